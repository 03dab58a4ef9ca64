"""Extract stage: WARC/ARC/WET files -> documents Parquet in OUT/extract/.

    spark-submit jobs/extract.py --input data/*.warc.gz --output runs/demo [key=value ...]

Files are spread over Spark tasks (input.files_per_task each); every task streams its files
with warcio and extracts main text with trafilatura under a hard per-document time limit.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script's folder on the path, where jobs/tokenize.py would
    # shadow the standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from curation.config import CurationConfig
from curation.inputs import InputError, resolve_inputs
from curation.spark.glue import extract_parts, extract_schemas, rows_by_folder
from curation.spark.stage import TaskReports, run_task_stage
from curation.spark.task_parquet import finish_folders
from jobs.common import StageJob, run_main, stage_main
from refinery.config import local_path, to_dict

STAGE = "extract"


def run_extract(
    spark, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/extract/_SUCCESS exists; return its stats (None if skipped)."""

    def write_parts(tmp: str) -> TaskReports:
        step = config.input.files_per_task
        files = sorted(inputs)  # parts in one order however the files are listed: a later
        # stage reading them in that order (tokenize on OUT/filter) writes the same shards
        tasks = [
            (i, files[start : start + step]) for i, start in enumerate(range(0, len(files), step))
        ]
        run = extract_parts(config.extract, STAGE, tmp)
        reports = (
            spark.sparkContext.parallelize(tasks, max(1, len(tasks))).mapPartitions(run).collect()
        )
        counts = [count for _, task_counts, _ in reports for count in task_counts]
        unopened = [error for _, _, errors in reports for error in errors]
        if inputs and len(unopened) == len(inputs):
            raise InputError(
                f"none of the {len(inputs)} input files could be opened, so nothing is "
                f"written; the first: {unopened[0]}"
            )
        attempts = [attempt for attempt, _, _ in reports]
        finish_folders(tmp, extract_schemas(STAGE), rows_by_folder(counts), attempts)
        return counts, {}, attempts

    settings = {**to_dict(config), "inputs": input_files(inputs)}
    return run_task_stage(spark, settings, out, STAGE, force, write_parts)


def input_files(inputs: list[str]) -> dict[str, Any]:
    """The files a run read, as run.json records them: a rerun on other files into the same
    folder, or on local files written again at another size (a crawl generated anew), says
    it kept the old output. Remote files by name only: a stat would be a request each."""
    named = sorted(f"{path}\t{_local_size(path)}" for path in inputs)
    digest = hashlib.sha256("\n".join(named).encode()).hexdigest()[:16]
    return {"count": len(inputs), "sha256": digest}


def _local_size(path: str) -> int | str:
    if "://" in path and not path.startswith("file:"):
        return ""
    try:
        return os.path.getsize(local_path(path))
    except OSError:
        return ""


def _warc_inputs(specs: list[str], config: CurationConfig) -> list[str]:
    return resolve_inputs(specs, config.input.cc_prefix, config.input.limit)


JOB = StageJob(STAGE, run_extract, _warc_inputs)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
