"""Argument parsing and start-up shared by every curation job (cc-pyspark's job skeleton)."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from curation.config import STAGE_ORDER, CurationConfig, ignored_note, load_curation_config
from curation.inputs import resolve_documents
from curation.shipped import register as register_shipped
from curation.spark.fs import HadoopFS
from curation.spark.session import build_session, shipped_files, stop_session
from curation.spark.stage import stage_path
from curation.spark.task_parquet import sweep_scratch
from refinery.cli import GivenOnce
from refinery.config import local_path
from refinery.errors import RefineryError, with_user_errors
from refinery.folder_lock import folder_lock

OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def stage_parser(
    prog: str, description: str, archives: bool = False, local_output: bool = False
) -> argparse.ArgumentParser:
    """The curation commands' arguments; `--limit` for those that read archives (extract,
    curate), whose input files it cuts; `local_output` for those that write memory-mapped
    shards (tokenize, train-tokenizer)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--input",
        nargs="+",
        action="extend",  # `--input A --input B` reads both
        required=True,
        metavar="IN",
        help="extract: WARC/ARC/WET files, directories, globs, a text file of paths, or a "
        "Common Crawl warc.paths.gz manifest; later stages: documents Parquet files or folders",
    )
    where = "a local or mounted folder" if local_output else "local, hdfs://, s3a://"
    parser.add_argument("--output", required=True, metavar="OUT", help=f"run folder ({where})")
    parser.add_argument(
        "--config",
        action=GivenOnce,
        metavar="FILE",
        help="YAML config (default: conf/curation/default.yaml)",
    )
    parser.add_argument("--force", action="store_true", help="redo stages that already finished")
    if archives:
        parser.add_argument(
            "--limit", type=int, metavar="N", help="take the first N archive files (input.limit=N)"
        )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def parse_stage_args(
    parser: argparse.ArgumentParser, argv: list[str] | None, lists: tuple[str, ...] = ("input",)
) -> argparse.Namespace:
    """Parse (overrides may stand between options, as for the training commands), then hand
    back `key=value` words that `--input IN...` (or another of the `lists` options) swallowed
    to the overrides (`--input crawl/ extract.timeout_seconds=2` means what it says), all in
    command-line order: the last setting of a key wins."""
    words = sys.argv[1:] if argv is None else argv
    args = parser.parse_intermixed_args(words)
    swallowed = []
    for name in lists:
        values = getattr(args, name)
        found = [v for v in values if OVERRIDE.match(v) and not os.path.exists(v)]
        setattr(args, name, [v for v in values if v not in found])
        swallowed += found
    pending = Counter([*swallowed, *args.overrides])
    args.overrides = []
    for word in words:
        if pending[word]:
            pending[word] -= 1
            args.overrides.append(word)
    if not args.input:
        parser.error("--input needs at least one file, folder, glob or manifest")
    return args


class OutputError(RefineryError):
    """An --output that cannot hold a run folder."""


def local_out(out: str) -> Path | None:
    """OUT as a local path (a plain path or file:), or None for hdfs://, s3a:// and such."""
    if urlparse(out).scheme not in ("", "file"):
        return None
    return Path(local_path(out))


def local_dir(out: str, stage: str = "tokenize") -> Path:
    """OUT as a local path, for a stage that writes with local file calls, not Hadoop's:
    tokenize memory-maps its shards (they must live on a POSIX filesystem), train-tokenizer
    saves a HF tokenizer file."""
    path = local_out(out)
    if path is None:
        raise OutputError(
            f"{out}: the {stage} stage writes local files and needs OUT on a "
            f"local or mounted filesystem (a plain path or file://), not {urlparse(out).scheme}://"
        )
    return path.resolve()


# The folders a run folder holds (DESIGN.md): a stage's name as OUT names one of them.
RUN_FOLDERS = (*STAGE_ORDER, "tokens", "contamination", "rejected", "errors", "stats")


def check_output(out: str, local: str | None = None, flag: str = "--output") -> None:
    """Create a local OUT now and prove it writable, so a bad `flag` fails before Spark
    starts, not as a task's traceback after a stage's work (or after hours of the stages
    before the one that needs OUT `local`, named). Remote OUTs are Hadoop's to check."""
    path = local_out(out)
    # The stages would write OUT/extract/... as /extract/...: file:///, file://localhost/ (what
    # file://$UNSET/ gives) and a link to / are the root too.
    root = path is not None and (not local_path(out).strip("/") or path.resolve() == Path("/"))
    if not out.rstrip("/") or root:
        raise OutputError(f"{flag} {out!r}: name a run folder, not the filesystem root")
    beside = [
        n
        for n in ("run.json", *RUN_FOLDERS)
        if path and n != path.name and (path.parent / n).exists()
    ]
    if path and path.name in RUN_FOLDERS and beside:  # OUT/dedup: a run folder nested in OUT
        raise OutputError(
            f"{flag} {out} is a stage folder of the run {path.parent} (it holds "
            f"{', '.join(beside[:3])}); OUT is the run folder: {flag} {path.parent}"
        )
    if local:
        local_dir(out, local)
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {out} is a file; OUT is a run folder")
    if (path / "_SUCCESS").exists() or next(path.glob("part-*"), None):
        raise OutputError(
            f"{flag} {out} holds a stage's documents (_SUCCESS, part files); OUT is the run "
            f"folder that holds the stage folders ({path.parent}?)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OutputError(f"{flag} {out}: cannot write there ({err.strerror or err})") from None


def load_config(args: argparse.Namespace, command: str | None = None) -> CurationConfig:
    """The config of --config and the overrides; `command` (a stage run alone) says on stderr
    which of the overrides it ignores."""
    limit = [f"input.limit={args.limit}"] if getattr(args, "limit", None) is not None else []
    config = load_curation_config(args.config, [*args.overrides, *limit])
    if command and (note := ignored_note(command, args.overrides)):
        print(note, file=sys.stderr)
    return config


def _documents(specs: list[str], config: CurationConfig) -> list[str]:
    return resolve_documents(specs)


def _never_skipped(config: CurationConfig) -> str | None:
    return None


def _nothing_to_check(config: CurationConfig) -> None:
    return None


@dataclass(frozen=True)
class StageJob:
    """One curation stage as `jobs/pipeline.py` and its own entry point drive it."""

    name: str
    # (spark, config, inputs, OUT, force) -> stats, or None when skipped as already done
    run: Callable[[SparkSession, CurationConfig, list[str], str, bool], dict[str, Any] | None]
    # `--input` words -> the inputs `run` takes (checked before Spark starts)
    resolve: Callable[[list[str], CurationConfig], list[str]] = _documents
    # config -> why the stage does not run with it (printed; the next stage reads its input)
    skip: Callable[[CurationConfig], str | None] = _never_skipped
    # config -> raises when a file the stage will read is missing (before Spark starts, so a
    # typo fails the pipeline at once, not after the stages before this one)
    check: Callable[[CurationConfig], None] = _nothing_to_check
    # OUT must be local or mounted (tokenize memory-maps its shards)
    local_output: bool = False


class RunFolderInUse(RefineryError):
    """Another curation job writes the same OUT."""


@contextlib.contextmanager
def curation_lock(out: str):
    """Hold a local OUT's lock while a job writes it: a second job on the same OUT deleted the
    first's scratch folders (each commit sweeps `_tmp/<stage>-*`) and replaced its outputs,
    and could finish without some of its parts. A remote OUT (hdfs://, s3a://) has no such
    lock: one job at a time there is the scheduler's to keep."""
    path = local_out(out)
    if path is None:
        yield
        return
    with folder_lock(path, RunFolderInUse, "curation job", "--output"):
        yield


def stage_main(job: StageJob, description: str, argv: list[str] | None) -> int:
    """`refinery <stage>` / `spark-submit jobs/<stage>.py`: parse, validate, run one stage."""
    parser = stage_parser(
        f"refinery {job.name}", description, job.resolve is not _documents, job.local_output
    )
    args = parse_stage_args(parser, argv)
    config = load_config(args, job.name)
    reason = job.skip(config)
    if reason:
        print(reason)
        return 0
    register_shipped(shipped_files(config.spark))
    job.check(config)
    inputs = job.resolve(args.input, config)
    check_output(args.output, job.name if job.local_output else None)
    out = args.output.rstrip("/")
    with curation_lock(out):
        spark = build_session(config.spark, job.name)
        try:
            fs = HadoopFS(spark)
            scratch = fs.uri(f"{out}/_tmp")
            stale = None if args.force else read_since(fs, out, job.name, inputs)
            if stale:
                print(stale)
            # extract hashes its input files with its settings; document stages record theirs
            read = read_record(out, inputs) if job.resolve is _documents else None
            stats = job.run(spark, config, inputs, out, args.force or stale is not None)
            if read is not None and stats is not None:
                record_read(fs, out, job.name, read)
            elif read is not None and (note := other_input(fs, out, job.name, read)):
                print(note)
        finally:
            stop_session(spark)
        sweep_late_writes(scratch, [job.name])
    if stats:
        print(summary_line(job.name, stats))
    return 0


# Stages whose Python tasks write their own part files (curation/spark/task_parquet.py)
TASK_WRITTEN = ("extract", "filter", "tokenize")


def sweep_late_writes(scratch: str, stages: list[str]) -> None:
    """`sweep_scratch` for the stages run whose tasks write themselves (only their killed
    copies write late). Housekeeping after the commit: a filesystem pyarrow cannot open from
    the driver (hdfs:// without libhdfs) is said, and the next commit of the stage tidies."""
    written = [stage for stage in stages if stage in TASK_WRITTEN]
    if not written:
        return
    try:
        sweep_scratch(scratch, written)
    except Exception as err:  # noqa: BLE001 (pyarrow raises several types, none of them ours)
        print(f"warning: could not tidy {scratch} ({err}); the next run of the stage will")


def read_stage_times(fs: HadoopFS, out: str) -> dict:
    path = f"{out}/run.json"
    return fs.read_json(path).get("stages", {}) if fs.exists(path) else {}


def ran_since(stages: dict, stage: str, upstream: str) -> str | None:
    """Why a finished `stage` is out of date: the stage it reads (`upstream`) finished after it
    did (run again alone, with --force or other input); None when it is not, or unknown."""
    mine = stages.get(stage, {}).get("finished")
    theirs = stages.get(upstream, {}).get("finished")
    if mine and theirs and theirs > mine:
        return f"{stage}: {upstream} ran again ({theirs}) after {stage} ({mine}): redoing {stage}"
    return None


def read_since(fs: HadoopFS, out: str, stage: str, inputs: list[str]) -> str | None:
    """`ran_since` for a stage run alone: whether one of `inputs` is the folder of a stage of
    OUT that finished after `stage` did (`refinery filter --force`, then `refinery dedup`).
    Paths are compared as Hadoop qualifies them (OUT may be given as file:///… or hdfs://…)."""
    times = read_stage_times(fs, out)
    if stage not in times:
        return None
    # Only inputs named like a stage folder are qualified: a JVM call each, and WARC inputs
    # (s3://, read by boto3) may be on no filesystem Hadoop has.
    folders = {input_folder(path) for path in inputs}
    named = {path for path in folders if path.rsplit("/", 1)[-1] in times}
    read = {_place(fs, path) for path in named}
    for upstream in sorted({path.rsplit("/", 1)[-1] for path in named}):
        if _place(fs, stage_path(out, upstream)) in read:
            why = ran_since(times, stage, upstream)
            if why:
                return why
    return None


def _place(fs: HadoopFS, path: str) -> str:
    """`path` as Hadoop qualifies it, a local one with its links resolved: OUT given through a
    link and --input through the folder it links to are one place."""
    local = local_out(path)
    return fs.uri(path if local is None else os.path.realpath(local))


def input_folder(path: str) -> str:
    """The folder a documents input is or is in: a glob's or a Parquet file's parent
    (`OUT/extract/*.parquet` reads the extract stage as `OUT/extract` does)."""
    path = path.rstrip("/")
    parent, _, name = path.rpartition("/")
    in_folder = any(c in name for c in "*?[") or name.endswith(".parquet")
    return parent if parent and in_folder else path


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # file:/x, s3://b/x; not data/12:00/x


def read_record(out: str, inputs: list[str]) -> list[str]:
    """The inputs of a stage run alone as run.json records them (`read`): those inside OUT by
    their path there, so that a run folder moved elsewhere names the same ones; a relative
    path (a glob) is made absolute first, not left relative to the directory it was typed in;
    a URI (file:/x, s3://b/x) outside OUT is left as it is."""
    local = local_out(out) is not None
    root = os.path.realpath(local_path(out)) if local else out.rstrip("/")
    return sorted(_recorded(root, path, local) for path in inputs)


def _recorded(root: str, path: str, local_root: bool) -> str:
    """`read_record`'s entry for `path`: inside `root`, its part there (links resolved: OUT or
    the input may be given through one); else as given (a URI) or absolute."""
    uri = _SCHEME.match(path) is not None
    if uri and (not local_root or local_out(path) is None):
        full = where = path
    else:
        full = os.path.abspath(local_path(path))
        where = os.path.realpath(full) if local_root else full
    if where.startswith(root + "/"):
        return where[len(root) + 1 :]
    return path if uri else full


def record_read(fs: HadoopFS, out: str, stage: str, read: list[str]) -> None:
    path = f"{out}/run.json"
    run = fs.read_json(path)
    run["stages"][stage]["read"] = read
    fs.write_json(path, run)


def other_input(fs: HadoopFS, out: str, stage: str, read: list[str]) -> str | None:
    """A note for a finished stage skipped though `--input` names other documents than it
    read, or None (also when it ran in `curate`, which records no `read`)."""
    then = read_stage_times(fs, out).get(stage, {}).get("read")
    if then is None or then == read:
        return None
    return (
        f"{stage}: note: it read {', '.join(then)}, not {', '.join(read)}, and its output is "
        "kept as it is; --force redoes it with this input"
    )


def summary_line(stage: str, stats: dict[str, Any]) -> str:
    rejected = sum(stats["rejected"].values())
    return (
        f"{stage}: {stats['input']} in, {stats['kept']} kept, {rejected} rejected, "
        f"{stats['errors']} errors in {stats['seconds']:.1f} s"
    )


def run_main(main: Callable[[list[str] | None], int]) -> None:
    """`spark-submit jobs/<stage>.py` entry: user errors print a message, not a traceback."""
    sys.exit(with_user_errors(lambda: main(sys.argv[1:])))
