"""Every curation stage in order (`pipeline.stages` in the config), in one Spark application.

    spark-submit jobs/pipeline.py --input crawl/ --output runs/demo [--force] [key=value ...]

Each stage reads the previous stage's kept documents from the run folder; a stage whose
_SUCCESS marker exists is skipped unless --force.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script by spark-submit
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from curation.inputs import resolve_inputs
from curation.spark.fs import HadoopFS
from curation.spark.session import build_session
from jobs.common import load_config, parse_stage_args, run_main, stage_parser
from jobs.extract import run_extract, summary_line


def main(argv: list[str] | None = None) -> int:
    args = parse_stage_args(stage_parser("refinery curate", __doc__.splitlines()[0]), argv)
    config = load_config(args)
    inputs = resolve_inputs(args.input, config.input.cc_prefix, config.input.limit)
    out = args.output.rstrip("/")
    spark = build_session(config.spark, "refinery-curate")
    try:
        fs = HadoopFS(spark)
        for stage in config.pipeline.stages:
            if stage == "extract":
                stats = run_extract(spark, config, inputs, out, args.force)
            stats = stats or fs.read_json(f"{out}/stats/{stage}.json")
            print(summary_line(stage, stats))
    finally:
        spark.stop()
    print(f"documents: {out}/{config.pipeline.stages[-1]}/")
    print(f"rejected:  {out}/rejected/   errors: {out}/errors/")
    print(f"stats:     {out}/stats/   run record: {out}/run.json")
    return 0


if __name__ == "__main__":
    run_main(main)
