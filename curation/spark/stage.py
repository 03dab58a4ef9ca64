"""Write one stage's outcome rows into the run folder, atomically, with stats that add up.

A stage produces a DataFrame of outcome rows (`outcome` = kept / rejected / error). This
module splits it into OUT/<stage>/ (kept documents), OUT/rejected/stage=<stage>/ and
OUT/errors/stage=<stage>/, counts it into OUT/stats/<stage>.json, and records the stage
in OUT/run.json. Everything is written under OUT/_tmp/ first and renamed into place, the
kept folder (with Spark's _SUCCESS) last, so a killed job never leaves a stage that looks done.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors import AnalysisException, SparkRuntimeException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

from curation.config import (
    COMMAND_SECTIONS,
    COMMAND_SETTINGS,
    EARLIER_SECTIONS,
    STAGE_SECTIONS,
    stage_settings,
    stage_settings_hash,
)
from curation.inputs import InputError
from curation.spark.fs import HadoopFS
from curation.spark.row_groups import MICROS_ADVICE, OFFSET, checked_row_groups
from curation.spark.task_parquet import drop_unreported
from refinery.config import config_hash, to_dict
from refinery.errors import UNREADABLE_FILE
from refinery.provenance import provenance

DRAW_SCALE = 1 << 40  # resolution of `seeded_draw`

# Columns every documents Parquet has (DESIGN.md).
REQUIRED_COLUMNS = ("id", "url", "host", "text", "source", "record_id", "fetch_time")
_REQUIRED_TYPES = {name: ("string",) for name in REQUIRED_COLUMNS} | {
    "fetch_time": ("timestamp", "timestamp_ntz")
}


# What the tasks of a stage that writes its own part files report, summed: (source, outcome,
# reason, n) counts, named counters, and the attempts whose part files are kept.
TaskReports = tuple[list[tuple[str, str, str | None, int]], dict[str, int], list[str]]

# Columns of outcome rows (rejected/, dedup's kept_id), not of documents: rejected rows read
# back as documents would collide with the ones a stage adds.
OUTCOME_COLUMNS = ("outcome", "reason", "error", "stage", "kept_id")


def stage_path(out: str, stage: str) -> str:
    return f"{out.rstrip('/')}/{stage}"


def stage_done(fs: HadoopFS, out: str, stage: str) -> bool:
    return fs.exists(f"{stage_path(out, stage)}/_SUCCESS")


# Characters Hadoop's path globbing reads: Spark globs every path it is given.
HADOOP_GLOB = re.compile(r"([*?\[\]{}\\])")


def _as_named(fs: HadoopFS, path: str) -> str:
    """`path` for Spark's reader: one that exists as named (`run [v2]/extract`, a folder's
    name, not a pattern) with Hadoop's glob characters escaped in its path, never in a URI's
    authority (`hdfs://[fe80::1]:8020/docs`); a pattern as it is."""
    scheme, sep, rest = path.partition("://") if "://" in path else ("", "", path)
    authority, slash, name = rest.partition("/") if sep else ("", "", rest)
    if not HADOOP_GLOB.search(name) or not fs.exists(path):
        return path
    escaped = HADOOP_GLOB.sub(r"\\\1", name)
    return f"{scheme}{sep}{authority}{slash}{escaped}"


# Spark's probe for a streaming sink's metadata looks for an escaped path unescaped and logs
# the miss as a WARN with a Java stack trace (the read is fine); the class moved in Spark 4.
METADATA_PROBES = (
    "org.apache.spark.sql.execution.streaming.FileStreamSink",
    "org.apache.spark.sql.execution.streaming.sinks.FileStreamSink",
)


def _quiet_metadata_probe(spark: SparkSession) -> None:
    """Log only errors from the metadata probe, which warns, with a Java stack trace, of every
    escaped path or glob it reads."""
    log4j = spark._jvm.org.apache.logging.log4j
    for name in METADATA_PROBES:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.ERROR)


def read_documents(spark: SparkSession, paths: list[str], footers: bool = True) -> DataFrame:
    """The documents Parquet at `paths`, refused with a clear error when it is not one.
    `footers=False` leaves every file's footer to the caller, which reads them anyway
    (`row_group_slices` and `row_slices` check them as they list row groups). Several inputs
    may be different stages' outputs (`mix --input A B`): their columns are merged, where Spark
    read the first file's and dropped the others' (a file without one reads it as null)."""
    literal = [_as_named(HadoopFS(spark), path) for path in paths]
    if literal != paths or any(HADOOP_GLOB.search(path) for path in literal):  # a glob too
        _quiet_metadata_probe(spark)
    try:
        try:
            docs = spark.read.option("mergeSchema", len(paths) > 1).parquet(*literal)
        except AnalysisException as err:
            if len(paths) == 1 or "TIMESTAMP(NANOS" not in str(err):
                raise
            # the merge reads every footer and fails on nanoseconds without naming the
            # file: read as one file's schema, the footer checks below name it
            docs = spark.read.parquet(*literal)
    except (AnalysisException, SparkRuntimeException) as err:  # the latter: mixed layouts
        refuse_run_folders(HadoopFS(spark), paths)
        hint = f"; {MICROS_ADVICE}" if "TIMESTAMP(NANOS" in str(err) else ""
        raise InputError(f"cannot read documents Parquet {paths}: {err}{hint}") from None
    except Py4JJavaError as err:  # a file whose footer the schema is read from
        if "CANNOT_MERGE_SCHEMAS" in str(err):
            conflict = " ".join(str(err).split("SQLSTATE")[0].split(":", 2)[-1].split())
            raise InputError(
                f"the inputs {paths} have a column of different types: {conflict}"
            ) from None
        unreadable = UNREADABLE_FILE.search(str(err))
        if unreadable is None:
            raise
        kind, path = unreadable.groups()
        damaged = kind in (None, "NO_HINT", "CANNOT_READ_FILE_FOOTER")
        why = "its footer is cut short or damaged" if damaged else kind
        raise InputError(f"{path}: cannot read it as Parquet ({why})") from None
    if footers:
        checked_row_groups(spark, docs.inputFiles())
    missing = [c for c in REQUIRED_COLUMNS if c not in docs.columns]
    if missing:
        raise InputError(f"documents Parquet {paths} lacks the required columns {missing}")
    mistyped = [
        f"{field.name} is {field.dataType.simpleString()}, not "
        + " or ".join(_REQUIRED_TYPES[field.name])
        for field in docs.schema.fields
        if field.name in REQUIRED_COLUMNS
        and field.dataType.simpleString() not in _REQUIRED_TYPES[field.name]
    ]
    if mistyped:  # stages would fail inside a task (an int text has no .encode)
        raise InputError(f"documents Parquet {paths}: {'; '.join(mistyped)}")
    carried = [c for c in OUTCOME_COLUMNS if c in docs.columns]
    if carried:  # rejected rows given as input: the stage writes its own outcome columns
        print(f"documents Parquet {paths}: the columns {carried} are left out (a stage's own)")
        docs = docs.drop(*carried)
    if OFFSET not in docs.columns:  # documents made elsewhere: errors/ rows get a null offset
        docs = docs.withColumn(OFFSET, F.lit(None).cast("long"))
    return docs


def refuse_run_folders(fs: HadoopFS, paths: list[str]) -> None:
    """Say a run folder given for documents as such, with its stage folders: Spark reads its
    stage=... subfolders as partitions and advises a `basePath` option no command has."""
    for path in paths:
        if fs.exists(f"{path.rstrip('/')}/run.json"):
            stages = fs.read_json(f"{path.rstrip('/')}/run.json").get("stages", {})
            folders = [stage_path(path, stage) for stage in stages if stage != "tokenize"]
            example = ", ".join(folders) or "none has finished"
            raise InputError(
                f"{path} is a run folder, not documents: give one of its stages' folders "
                f"({example})"
            )


def seeded_draw(seed: str) -> Column:
    """A uniform draw in [0, 1) fixed by `seed` and the document's id: samples taken with it
    hold the same documents however the input is partitioned (DataFrame.sample seeds each
    partition apart, so another core count takes another sample)."""
    return F.pmod(F.xxhash64(F.lit(seed), "id"), F.lit(DRAW_SCALE)) / DRAW_SCALE


def _unusual_ids(docs: DataFrame) -> DataFrame | None:
    """The ids of `docs` that are null or repeated (None when there are none: one Spark job);
    a null one is refused (it would vanish from outcomes joined back by id)."""
    counts = docs.groupBy("id").count()
    unusual = counts.where((F.col("count") > 1) | F.col("id").isNull()).select("id")
    if unusual.head() is None:
        return None
    if unusual.where(F.col("id").isNull()).head() is not None:
        raise InputError("documents Parquet holds a document without an id; every one needs one")
    return unusual


def check_unique_ids(docs: DataFrame) -> None:
    """Refuse a null or repeated id, for a stage that joins its decisions back by id (a null
    one would vanish from the outcomes, a repeated one take another document's decision)."""
    repeated = _unusual_ids(docs)
    if repeated is not None:
        duplicated = repeated.head()["id"]
        where = [c for c in ("source", "offset", "url") if c in docs.columns]
        rows = docs.where(F.col("id") == duplicated).select(*where).limit(2).collect()
        seen = "; ".join(", ".join(f"{c} {row[c]}" for c in where) for row in rows)
        raise InputError(
            f"documents Parquet repeats the id {duplicated!r} ({seen}); ids are unique "
            "(extract gives each WARC record one: the same record read from two input files?)"
        )


def check_numeric(docs: DataFrame, column: str) -> None:
    """Refuse a `column` (quality_score) of another type than numbers, for a stage that ranks
    by it: text scores ("0.5", "n/a") ranked as text, or failed a cast part way through."""
    kind = docs.schema[column].dataType
    if not isinstance(kind, NumericType):
        raise InputError(
            f"documents Parquet has a {column} column of {kind.simpleString()}, not numbers: "
            f"ranking by it needs numeric scores (the classify stage writes doubles)"
        )


def split_repeated_ids(docs: DataFrame) -> tuple[DataFrame, DataFrame | None]:
    """(documents with distinct ids, the other copies of each repeated id or None if none).

    Extract gives a WARC record one id however its files are cut, so a record read from two
    input files (one crawl listed twice, overlapping segments) comes twice. The copy kept is
    the first by (source, offset, text): the same whatever the partitioning. A null id is
    refused."""
    repeated = _unusual_ids(docs)
    if repeated is None:
        return docs, None
    copies = docs.join(repeated, "id", "left_semi")
    order = [F.col(c).asc_nulls_last() for c in ("source", OFFSET, "text") if c in docs.columns]
    first = Window.partitionBy("id").orderBy(*order)
    ranked = copies.withColumn("_copy", F.row_number().over(first))
    firsts = ranked.where(F.col("_copy") == 1).drop("_copy")
    others = ranked.where(F.col("_copy") > 1).drop("_copy")
    return docs.join(repeated, "id", "left_anti").unionByName(firsts), others


def run_stage(
    spark: SparkSession,
    config: Any,
    out: str,
    stage: str,
    force: bool,
    outcomes: Callable[[], tuple[DataFrame, list[str]]],
    per_source: bool = False,
    stage_files: Callable[[], dict[str, Any]] | None = None,
    rejected_columns: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Run `stage` unless OUT/<stage>/_SUCCESS exists (or `force`); return its stats, or None
    when skipped. `outcomes()` builds the outcome rows and names the kept document columns;
    `stage_files()`, called after it, gives JSON files to put in OUT/<stage>/ (see write_stage);
    `rejected_columns` are outcome columns only rejected rows carry (dedup's `kept_id`)."""
    fs = HadoopFS(spark)
    if _skipped(fs, out, stage, force, to_dict(config)):
        return None
    started = time.time()
    rows, document_columns = outcomes()
    files = stage_files() if stage_files else {}
    return write_stage(
        fs,
        out,
        to_dict(config),
        stage,
        rows,
        document_columns,
        started,
        per_source,
        files,
        rejected_columns,
    )


def run_task_stage(
    spark: SparkSession,
    config: Any,
    out: str,
    stage: str,
    force: bool,
    write_parts: Callable[[str], TaskReports],
    per_source: bool = True,
) -> dict[str, Any] | None:
    """`run_stage` for a stage whose tasks write their own part files (task_parquet.py):
    `write_parts(tmp)` fills and finishes tmp/{kept,rejected,errors} (`tmp` is a URI, as
    pyarrow reads one: `HadoopFS.uri`) and returns the (source, outcome, reason, n) counts,
    the named counters (e.g. pii:EMAIL) to add to the stats and the reported attempts."""
    fs = HadoopFS(spark)
    if _skipped(fs, out, stage, force, to_dict(config)):
        return None
    started = time.time()
    out = out.rstrip("/")
    tmp = _tmp_folder(out, stage)
    with cleared_on_failure(fs, tmp):
        counts, counters, attempts = write_parts(fs.uri(tmp))
        stats = stage_stats(counts, per_source)
        if counters:
            stats["counters"] = dict(sorted(counters.items()))
        stats["seconds"] = round(time.time() - started, 3)
        _commit(fs, out, to_dict(config), stage, tmp, stats)
    for folder in (stage_path(out, stage), *_outcome_paths(out, stage)):
        drop_unreported(fs.uri(folder), attempts)
    return stats


def _skipped(fs: HadoopFS, out: str, stage: str, force: bool, config: dict[str, Any]) -> bool:
    if stage_done(fs, out, stage) and not force:
        print(f"{stage}: already done ({stage_path(out, stage)}/_SUCCESS); --force redoes it")
        note = other_settings(fs, out, stage, config)
        if note:
            print(note)
        return True
    return False


def _tmp_folder(out: str, stage: str) -> str:
    return f"{out.rstrip('/')}/_tmp/{stage}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def cleared_on_failure(fs: HadoopFS, tmp: str) -> Iterator[None]:
    """A stage attempt that fails takes its temporary folder with it: OUT keeps none of its
    parts (a task still writing after that leaves files the next commit sweeps,
    `drop_abandoned_attempts`), and the failure is what is said."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            fs.delete(tmp)
        raise


def write_stage(
    fs: HadoopFS,
    out: str,
    config: dict[str, Any],
    stage: str,
    outcomes: DataFrame,
    document_columns: list[str],
    started: float,
    per_source: bool = False,
    files: dict[str, Any] | None = None,
    rejected_columns: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Materialise `outcomes` once and write every output of `stage` (and its entry in
    run.json, under `config`); return its stats.

    Rejected rows keep the document columns plus `stage`, `reason` and `rejected_columns`;
    `per_source` adds a per-input-file breakdown to the stats. `files` ({name: JSON content})
    are written into the kept folder before it is renamed into place, so they exist exactly
    when _SUCCESS does; their names start with `_` so Parquet readers (Spark, pyarrow) skip them.
    """
    if any(not name.startswith("_") for name in files or {}):
        raise ValueError(f"stage files must start with `_`: {sorted(files)}")
    out = out.rstrip("/")
    tmp = _tmp_folder(out, stage)
    with cleared_on_failure(fs, tmp):
        rows = outcomes.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            kept = rows.where(F.col("outcome") == "kept").select(*document_columns)
            # sorted by id across the part files: the order joins and Spark's input splits (by
            # size, by core count) gave follows cluster settings, and the tokenize stage's shards
            # (and the manifest fingerprint a resume checks) follow the order of what they read
            kept.orderBy("id").write.parquet(f"{tmp}/kept")
            for name, content in (files or {}).items():
                fs.write_json(f"{tmp}/kept/{name}", content)
            # `stage` is stored in the files as well as in the partition folder name, so a
            # single folder read alone still says where its rows come from.
            stage_column = F.lit(stage).alias("stage")
            rejected = rows.where(F.col("outcome") == "rejected")
            rejected.select(
                *document_columns, stage_column, "reason", *rejected_columns
            ).write.parquet(f"{tmp}/rejected")
            errors = rows.where(F.col("outcome") == "error")
            errors.select("source", "offset", stage_column, "error").write.parquet(f"{tmp}/errors")
            counts = rows.groupBy("source", "outcome", "reason").count().collect()
        finally:
            rows.unpersist()
        stats = stage_stats(
            [(r["source"], r["outcome"], r["reason"], r["count"]) for r in counts], per_source
        )
        stats["seconds"] = round(time.time() - started, 3)
        _commit(fs, out, config, stage, tmp, stats)
    return stats


def stage_stats(
    counts: list[tuple[str, str, str | None, int]], per_source: bool = False
) -> dict[str, Any]:
    """{"input", "kept", "rejected": {reason: n}, "errors"} from (source, outcome, reason, n)."""

    def summarise(items: list[tuple[str, str | None, int]]) -> dict[str, Any]:
        rejected: Counter[str] = Counter()
        kept = errors = 0
        for outcome, reason, n in items:
            if outcome == "kept":
                kept += n
            elif outcome == "rejected":
                rejected[reason or "unknown"] += n
            else:
                errors += n
        total = kept + sum(rejected.values()) + errors
        return {
            "input": total,
            "kept": kept,
            "rejected": dict(sorted(rejected.items())),
            "errors": errors,
        }

    stats = summarise([(o, r, n) for _, o, r, n in counts])
    if per_source:
        by_source: dict[str, list[tuple[str, str | None, int]]] = defaultdict(list)
        for source, outcome, reason, n in counts:
            by_source[source].append((outcome, reason, n))
        stats["files"] = {s: summarise(items) for s, items in sorted(by_source.items())}
    return stats


def _commit(
    fs: HadoopFS, out: str, config: dict[str, Any], stage: str, tmp: str, stats: dict[str, Any]
) -> None:
    """Move the stage's outputs into place, the kept folder with its _SUCCESS last. run.json
    learns the stage finished before that: killed in between, the stage is redone (no
    _SUCCESS), and with a newer finish time than the stages after it, they are redone too;
    the other order left them built on the old output with nothing to say so."""
    final = stage_path(out, stage)
    fs.delete(f"{final}/_SUCCESS")  # a stage being redone loses its _SUCCESS first
    fs.delete(final)
    for part, target in zip(("rejected", "errors"), _outcome_paths(out, stage), strict=True):
        fs.delete(target)
        fs.rename(f"{tmp}/{part}", target)
    fs.write_json(f"{out}/stats/{stage}.json", stats)
    record_run(fs, out, config, stage, stats)
    fs.rename(f"{tmp}/kept", final)
    fs.delete(tmp)
    drop_abandoned_attempts(fs, out, stage)


def _outcome_paths(out: str, stage: str) -> tuple[str, str]:
    """The stage's rejected/ and errors/ partitions in OUT."""
    return f"{out}/rejected/stage={stage}", f"{out}/errors/stage={stage}"


def drop_abandoned_attempts(fs: HadoopFS, out: str, stage: str) -> None:
    """Once `stage` is committed, delete what killed attempts at it left in OUT/_tmp/ (nothing
    reads them any more), and OUT/_tmp/ itself when it is empty."""
    scratch = f"{out}/_tmp"
    if not fs.exists(scratch):
        return
    for path in fs.list(scratch):
        if path.rstrip("/").rsplit("/", 1)[-1].startswith(f"{stage}-"):
            fs.delete(path)
    if not fs.list(scratch):
        fs.delete(scratch)


def stage_outputs(fs: HadoopFS, out: str, stage: str) -> list[str]:
    """What a run of `stage` left in OUT: its documents (_SUCCESS first), rejected and errors
    partitions and stats, and run.json when it records the stage."""
    out = out.rstrip("/")
    paths = [
        f"{stage_path(out, stage)}/_SUCCESS",
        stage_path(out, stage),
        f"{out}/rejected/stage={stage}",
        f"{out}/errors/stage={stage}",
        f"{out}/stats/{stage}.json",
    ]
    found = [path for path in paths if fs.exists(path)]
    run_path = f"{out}/run.json"
    if fs.exists(run_path) and stage in fs.read_json(run_path).get("stages", {}):
        found.append(run_path)
    return found


def remove_stage(fs: HadoopFS, out: str, stage: str) -> bool:
    """Delete `stage_outputs` (from run.json, only the stage's entry); whether there were
    any. For a stage the pipeline now skips: left there, its rejections would count documents
    that later stages keep, and its stats break the chain from the stage before it to the one
    after."""
    found = stage_outputs(fs, out, stage)
    for path in found:
        if path.endswith("/run.json"):
            run = fs.read_json(path)
            del run["stages"][stage]
            fs.write_json(path, run)
        else:
            fs.delete(path)
    return bool(found)


def record_run(
    fs: HadoopFS, out: str, config: dict[str, Any], stage: str, stats: dict[str, Any]
) -> None:
    """Merge this stage into OUT/run.json: resolved config, version + git SHA, stage timings.
    The top level holds the last stage's config, and in `spark_in_effect` the values its
    session ran with for the master and the config's `spark.conf` keys (spark-submit's flags
    win over the config's); each stage keeps its own config's hash, so stages run under
    different configs show it, the settings of its own sections (`settings`: a stage run
    later under other ones changes the top level only), and those its command added
    (COMMAND_SECTIONS)."""
    path = f"{out.rstrip('/')}/run.json"
    run = fs.read_json(path) if fs.exists(path) else {"stages": {}}
    command = {k: v for k, v in config.items() if k in COMMAND_SECTIONS}
    resolved = {k: v for k, v in config.items() if k not in COMMAND_SECTIONS}
    run.update(config=resolved, config_hash=config_hash(resolved), **provenance())
    keys = ["spark.master", *resolved.get("spark", {}).get("conf", {})]
    run["spark_in_effect"] = fs.spark_settings(keys)
    run["stages"][stage] = {
        "seconds": stats["seconds"],
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": run["config_hash"],
        "settings_hash": stage_settings_hash(config, stage),
        "settings": {
            k: v
            for k, v in (stage_settings(config, stage) or {}).items()
            if k not in COMMAND_SECTIONS
        },
        **command,
        **{k: stats[k] for k in ("input", "kept", "errors")},
    }
    fs.write_json(path, run)


def other_settings(fs: HadoopFS, out: str, stage: str, config: dict[str, Any]) -> str | None:
    """A note for a finished `stage` skipped under other settings of its own sections
    (STAGE_SECTIONS) than it ran with, or None: skipped, it keeps the output of those."""
    path = f"{out.rstrip('/')}/run.json"
    if not fs.exists(path):
        return None
    then = fs.read_json(path).get("stages", {}).get(stage, {}).get("settings_hash")
    same = (STAGE_SECTIONS[stage], EARLIER_SECTIONS.get(stage))
    if then is None or any(then == stage_settings_hash(config, stage, s) for s in same if s):
        return None
    sections = " and ".join(f"{name}.*" for name in STAGE_SECTIONS[stage])
    what = COMMAND_SETTINGS.get(stage, f"{sections} settings")
    return (
        f"{stage}: note: it ran with other {what} than these, and its output is kept as it "
        "is; --force redoes it with these"
    )
