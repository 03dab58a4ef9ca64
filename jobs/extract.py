"""Extract stage: WARC/ARC/WET files -> documents Parquet in OUT/extract/.

    spark-submit jobs/extract.py --input data/*.warc.gz --output runs/demo [key=value ...]

Files are spread over Spark tasks (input.files_per_task each); every task streams its files
with warcio and extracts main text with trafilatura under a hard per-document time limit.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from curation.config import CurationConfig
from curation.extract import DOCUMENT_FIELDS
from curation.inputs import resolve_inputs
from curation.spark.fs import HadoopFS
from curation.spark.glue import EXTRACT_ARROW_SCHEMA, extract_batches, spark_schema
from curation.spark.session import build_session
from curation.spark.stage import record_run, stage_done, stage_path, write_stage
from jobs.common import load_config, parse_stage_args, run_main, stage_parser
from refinery.config import to_dict

STAGE = "extract"


def run_extract(
    spark, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/extract/_SUCCESS exists; return its stats (None if skipped)."""
    fs = HadoopFS(spark)
    if stage_done(fs, out, STAGE) and not force:
        print(f"{STAGE}: already done ({stage_path(out, STAGE)}/_SUCCESS); --force redoes it")
        return None
    started = time.time()
    tasks = math.ceil(len(inputs) / config.input.files_per_task)
    paths = spark.createDataFrame(
        spark.sparkContext.parallelize([(p,) for p in inputs], tasks), "path string"
    )
    outcomes = paths.mapInArrow(extract_batches(config.extract), spark_schema(EXTRACT_ARROW_SCHEMA))
    stats = write_stage(fs, out, STAGE, outcomes, list(DOCUMENT_FIELDS), started, per_source=True)
    record_run(fs, out, to_dict(config), STAGE, stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    args = parse_stage_args(stage_parser("refinery extract", __doc__.splitlines()[0]), argv)
    config = load_config(args)
    inputs = resolve_inputs(args.input, config.input.cc_prefix, config.input.limit)
    spark = build_session(config.spark, "refinery-extract")
    try:
        stats = run_extract(spark, config, inputs, args.output, args.force)
    finally:
        spark.stop()
    if stats:
        print(summary_line(STAGE, stats))
    return 0


def summary_line(stage: str, stats: dict[str, Any]) -> str:
    rejected = sum(stats["rejected"].values())
    return (
        f"{stage}: {stats['input']} in, {stats['kept']} kept, {rejected} rejected, "
        f"{stats['errors']} errors in {stats['seconds']:.1f} s"
    )


if __name__ == "__main__":
    run_main(main)
