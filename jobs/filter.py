"""Filter stage: documents Parquet -> documents that pass the configured chain, in OUT/filter/.

    spark-submit jobs/filter.py --input runs/demo/extract --output runs/demo [key=value ...]

The chain (`filter.steps`: URL blocklist, language ID, bad words, ...) is built on the driver,
so a missing list or model fails before any task runs, and broadcast to the executors.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script folder, where jobs/tokenize.py would shadow the
    # standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import SparkSession

from curation.config import CurationConfig
from curation.filters.chain import FilterChain
from curation.spark.glue import FILTER_OUTCOME_SCHEMA, filter_batches, filter_output_schema
from curation.spark.stage import read_documents, run_stage
from jobs.common import StageJob, run_main, stage_main

STAGE = "filter"


def run_filter(
    spark: SparkSession, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/filter/_SUCCESS exists; return its stats (None if skipped)."""

    def outcomes():
        chain = FilterChain.from_config(config.filter)
        docs = read_documents(spark, inputs)
        schema = filter_output_schema(docs.schema, chain)
        batches = filter_batches(spark.sparkContext.broadcast(chain), schema)
        rows = docs.mapInArrow(batches, schema)
        outcome_columns = FILTER_OUTCOME_SCHEMA.names
        return rows, [c for c in schema.fieldNames() if c not in outcome_columns]

    return run_stage(spark, config, out, STAGE, force, outcomes)


JOB = StageJob(STAGE, run_filter)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
