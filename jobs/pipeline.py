"""Every curation stage in order (`pipeline.stages` in the config), in one Spark application.

    spark-submit jobs/pipeline.py --input crawl/ --output runs/demo [--force] [key=value ...]

The first stage reads --input; each later stage reads the previous stage's kept documents
from the run folder; a stage that skips itself (classify with no quality model), or one left
out between the first and last stage listed, is passed over, and the next stage reads what it
would have read (if an earlier run of OUT ran it, only with --force, which removes its output
and redoes the stages after it). A stage whose
_SUCCESS marker exists is skipped unless --force, or unless a stage before it ran again (its
input changed): in this application, or since, by a stage job run alone (run.json's
`finished` times say which).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script's folder on the path, where jobs/tokenize.py would
    # shadow the standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from curation.config import CurationConfig
from curation.shipped import register as register_shipped
from curation.spark.fs import HadoopFS
from curation.spark.session import build_session, shipped_files, stop_session
from curation.spark.stage import remove_stage, stage_outputs, stage_path
from jobs import classify, dedup, extract, mix, tokenize
from jobs import filter as filter_job
from jobs.common import (
    OutputError,
    StageJob,
    check_output,
    curation_lock,
    load_config,
    parse_stage_args,
    read_since,
    run_main,
    stage_parser,
    summary_line,
    sweep_late_writes,
)

STAGES = {
    job.name: job
    for job in (extract.JOB, filter_job.JOB, dedup.JOB, classify.JOB, mix.JOB, tokenize.JOB)
}


def main(argv: list[str] | None = None) -> int:
    args = parse_stage_args(
        stage_parser("refinery curate", __doc__.splitlines()[0], archives=True), argv
    )
    config = load_config(args)
    plan = stage_plan(config)
    register_shipped(shipped_files(config.spark))
    for job, reason in plan:
        if not reason:
            job.check(config)
    jobs = [job for job, _ in plan]
    inputs = jobs[0].resolve(args.input, config)
    local = [job.name for job, reason in plan if job.local_output and not reason]
    check_output(args.output, local[0] if local else None)
    out = args.output.rstrip("/")
    with curation_lock(out):
        spark = build_session(config.spark, "curate")
        try:
            fs = HadoopFS(spark)
            scratch = fs.uri(f"{out}/_tmp")
            check_no_skipped_leftovers(fs, out, plan, args.force)
            force = args.force
            last = jobs[0].name
            for job, reason in plan:
                if reason:  # the next stage reads this one's input
                    print(reason)
                    if remove_stage(fs, out, job.name):  # an earlier run's (--force: see above)
                        print(f"{job.name}: removed what an earlier run of it left in {out}")
                    continue
                if not force:  # run.json's times, for tokenize (tokens/) too
                    stale = read_since(fs, out, job.name, inputs)
                    if stale:
                        print(f"{stale} and the stages after it")
                        force = True
                stats = job.run(spark, config, inputs, out, force)
                force = force or stats is not None
                print(summary_line(job.name, stats or fs.read_json(f"{out}/stats/{job.name}.json")))
                inputs = [stage_path(out, job.name)]
                last = job.name
        finally:
            stop_session(spark)
        sweep_late_writes(scratch, [job.name for job in jobs])
    if last == tokenize.STAGE:
        print(f"tokens:    {out}/{tokenize.TOKENS}/ (check: refinery inspect-shards)")
    else:
        print(f"documents: {out}/{last}/")
    print(f"rejected:  {out}/rejected/   errors: {out}/errors/")
    print(f"stats:     {out}/stats/   run record: {out}/run.json")
    return 0


def stage_plan(config: CurationConfig) -> list[tuple[StageJob, str | None]]:
    """Each stage from the first listed in pipeline.stages to the last, with why it does not
    run (it skips itself, or is left out of the list), or None when it runs."""
    listed = config.pipeline.stages
    names = list(STAGES)[list(STAGES).index(listed[0]) : list(STAGES).index(listed[-1]) + 1]
    return [
        (
            STAGES[name],
            STAGES[name].skip(config)
            if name in listed
            else f"{name}: skipped, left out of pipeline.stages",
        )
        for name in names
    ]


def check_no_skipped_leftovers(
    fs: HadoopFS, out: str, plan: list[tuple[StageJob, str | None]], force: bool
) -> None:
    """Refuse, unless --force, a run that passes over a stage an earlier run of OUT ran
    (classify with its quality model forgotten, or left out of the list): the stages after it
    were built on its output, and its rejections would count documents they keep. --force
    removes that output and redoes them."""
    if force:
        return
    for job, reason in plan:
        if reason and stage_outputs(fs, out, job.name):
            raise OutputError(
                f"{reason.rstrip('.')}, but {stage_path(out, job.name)} holds an earlier run's "
                f"output of it, which the stages after it read. Give its settings again, or "
                f"--force to remove that output and redo the stages after it"
            )


if __name__ == "__main__":
    run_main(main)
