"""Filter stage: documents Parquet -> documents that pass the configured chain, in OUT/filter/.

    spark-submit jobs/filter.py --input runs/demo/extract --output runs/demo [key=value ...]

The chain (`filter.steps`: URL blocklist, language ID, bad words, ...) is built on the driver,
so a missing list or model fails before any task runs, and broadcast to the executors. Each
task reads its share of the input's row groups and writes its kept, rejected and errors rows
itself: one Spark job, no text through the JVM.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script folder, where jobs/tokenize.py would shadow the
    # standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import SparkSession

from curation.config import CurationConfig
from curation.filters.chain import FilterChain, warnings
from curation.spark.glue import filter_parts, filter_schemas, rows_by_folder
from curation.spark.row_groups import row_group_slices
from curation.spark.stage import TaskReports, read_documents, run_task_stage
from curation.spark.task_parquet import finish_folders
from jobs.common import StageJob, run_main, stage_main

STAGE = "filter"


def run_filter(
    spark: SparkSession, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/filter/_SUCCESS exists; return its stats (None if skipped)."""

    def write_parts(tmp: str) -> TaskReports:
        chain = FilterChain.from_config(config.filter)
        docs = read_documents(spark, inputs, footers=False)
        schemas = filter_schemas(docs.schema, chain, STAGE)
        tasks = list(enumerate(row_group_slices(spark, docs.inputFiles())))
        run = filter_parts(spark.sparkContext.broadcast(chain), schemas, STAGE, tmp)
        reports = spark.sparkContext.parallelize(tasks, max(1, len(tasks))).mapPartitions(run)
        counts: list[tuple[str, str, str | None, int]] = []
        counters: Counter[str] = Counter()
        attempts = []
        for attempt, task_counts, task_counters in reports.collect():
            attempts.append(attempt)
            counts += task_counts
            counters.update(task_counters)
        finish_folders(tmp, schemas, rows_by_folder(counts), attempts)
        return counts, counters, attempts

    return run_task_stage(spark, config, out, STAGE, force, write_parts, per_source=False)


def check(config: CurationConfig) -> None:
    """Missing lists or models fail before Spark starts; a configuration that rejects a kept
    language wholesale, or leaves one unchecked, is said."""
    FilterChain.check_files(config.filter)
    for warning in warnings(config.filter):
        print(f"{STAGE}: warning: {warning}", file=sys.stderr)


JOB = StageJob(STAGE, run_filter, check=check)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
