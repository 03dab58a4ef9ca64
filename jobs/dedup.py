"""Dedup stage: documents Parquet -> one document per URL, exact text and near-duplicate cluster.

    spark-submit jobs/dedup.py --input runs/demo/filter --output runs/demo [key=value ...]

URL duplicates (same normalised URL), exact duplicates (same normalised text) and MinHash-LSH
near duplicates (connected components in Spark) go to OUT/rejected/stage=dedup/ with the id of
the document kept in their place; every document carries `cluster_id`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script folder, where jobs/tokenize.py would shadow the
    # standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from curation.config import CurationConfig
from curation.spark.checkpoints import checkpoints
from curation.spark.dedup import dedup_outcomes
from curation.spark.stage import read_documents, run_stage
from jobs.common import StageJob, run_main, stage_main

STAGE = "dedup"


def run_dedup(
    spark, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/dedup/_SUCCESS exists; return its stats (None if skipped)."""

    with checkpoints(spark, config.spark.checkpoints, out, STAGE) as checkpoint:

        def outcomes():
            return dedup_outcomes(read_documents(spark, inputs), config.dedup, checkpoint)

        return run_stage(spark, config, out, STAGE, force, outcomes, rejected_columns=("kept_id",))


JOB = StageJob(STAGE, run_dedup)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
