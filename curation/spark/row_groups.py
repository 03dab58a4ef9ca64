"""Plan tasks that read their own share of a documents Parquet with pyarrow.

The filter and tokenize stages do not scan their input through Spark: the driver lists the
input's Parquet row groups from the footers and cuts them, in file order, into contiguous runs
of about equal bytes; each task opens its run's files itself, so document text never enters
the JVM. Which row groups a task reads depends on the input files and the number of runs only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from curation.inputs import InputError
from curation.spark.task_parquet import filesystem
from refinery.utf8 import row_name, undecodable_row

T = TypeVar("T")
# A task's share of one row group: (file, row group index, first row, end row) within it.
Piece = tuple[str, int, int, int]


class RowGroup(NamedTuple):
    uri: str
    index: int
    bytes: int
    rows: int


MICROS_ADVICE = "write timestamps in microseconds (pandas: to_parquet(..., coerce_timestamps='us'))"

# A row's WARC record offset, for errors/ rows: Refinery's documents carry it, DESIGN.md does
# not require it, and documents made elsewhere read as if it were null.
OFFSET = "offset"

# Spark lists and reads the footers of fewer files than this on the driver, more in a job.
DISCOVERY_THRESHOLD = "spark.sql.sources.parallelPartitionDiscovery.threshold"


def open_parquet(uri: str) -> pq.ParquetFile:
    """A Parquet file Spark listed (a path, file://, s3a://, or any filesystem pyarrow knows)."""
    try:
        fs, path = filesystem(uri)  # s3a://, as Spark lists files on S3, is read as s3://
        # Spark writes timestamps as INT96 by default; microseconds are what it reads back.
        return pq.ParquetFile(fs.open_input_file(path), coerce_int96_timestamp_unit="us")
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{uri}: cannot read it as Parquet: {err}") from None


def on_each_file(spark: SparkSession, files: list[str], read: Callable[[str], T]) -> list[T]:
    """`read(file)` for each file, in file order: on the driver, or in a Spark job when there
    are more files than Spark itself would list on the driver."""
    files = sorted(files)
    if len(files) <= int(spark.conf.get(DISCOVERY_THRESHOLD, "32")):
        return [read(uri) for uri in files]
    slices = min(len(files), spark.sparkContext.defaultParallelism)
    return spark.sparkContext.parallelize(files, slices).map(read).collect()


def footer(uri: str) -> tuple[str | None, list[RowGroup]]:
    """(why the file cannot be read as documents Parquet, or None; its row groups): one read
    of the footer serves both."""
    try:
        parquet = open_parquet(uri)
    except InputError as err:
        return str(err), []
    schema = parquet.schema_arrow
    nanos = [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
    if nanos:
        return (
            f"{uri}: {', '.join(nanos)} holds nanosecond timestamps, which Spark cannot read; "
            f"{MICROS_ADVICE}"
        ), []
    meta = parquet.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    return None, [RowGroup(uri, i, g.total_byte_size, g.num_rows) for i, g in enumerate(groups)]


def checked_row_groups(spark: SparkSession, files: list[str]) -> list[RowGroup]:
    """The row groups of every file, in file order. Every file must be Parquet that Spark
    reads: otherwise a task fails deep in the stage with a JVM traceback naming no file."""
    footers = on_each_file(spark, files, footer)
    problems = [problem for problem, _ in footers if problem]
    if problems:
        more = f" (and {len(problems) - 1} more files)" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)
    return sorted(group for _, groups in footers for group in groups)


def contiguous_slices(sizes: list[int], parts: int) -> list[list[int]]:
    """Indices of `sizes` cut into at most `parts` contiguous runs of about equal total size.

    Item i goes to the run its midpoint falls in, so the cut depends on the sizes and `parts`
    only; runs that would be empty are left out.
    """
    if not any(sizes):
        sizes = [1] * len(sizes)
    total, start = sum(sizes), 0
    runs: dict[int, list[int]] = {}
    for i, size in enumerate(sizes):
        run = min(parts - 1, int((start + size / 2) * parts / total))
        runs.setdefault(run, []).append(i)
        start += size
    return [runs[k] for k in sorted(runs)]


def row_group_slices(
    spark: SparkSession, files: list[str], parts: int | None = None
) -> list[list[Piece]]:
    """The input's row groups, whole and in file order, cut into at most `parts` runs of
    about equal bytes. `parts=None` splits as Spark's own file scan would: a run per core at
    least, and as many as runs of spark.sql.files.maxPartitionBytes need. Footers are read on
    the driver, or in a Spark job when there are more files than Spark itself would list there;
    a file that is not documents Parquet is refused (`checked_row_groups`)."""

    groups = checked_row_groups(spark, files)
    context = spark.sparkContext
    sizes = [group.bytes for group in groups]
    if parts is None:
        max_bytes = spark._jsparkSession.sessionState().conf().filesMaxPartitionBytes()
        parts = max(context.defaultParallelism, math.ceil(sum(sizes) / max_bytes))
    runs = contiguous_slices(sizes, parts)
    return [[(g.uri, g.index, 0, g.rows) for g in (groups[i] for i in run)] for run in runs]


def row_slices(spark: SparkSession, files: list[str], parts: int) -> list[list[Piece]]:
    """The input's rows, in file order, cut into `parts` runs of equal row counts (empty runs
    left out): where the cuts fall depends on the order of the rows alone, not on how files
    and row groups hold them, so a task's rows are the same on any cluster (tokenize)."""
    groups = checked_row_groups(spark, files)
    total = sum(group.rows for group in groups)
    bounds = [total * k // parts for k in range(parts + 1)]
    runs: list[list[Piece]] = [[] for _ in range(parts)]
    start, run = 0, 0
    for group in groups:
        end = start + group.rows
        while run < parts and bounds[run] < end:
            first, last = max(start, bounds[run]), min(end, bounds[run + 1])
            if first < last:
                runs[run].append((group.uri, group.index, first - start, last - start))
            if bounds[run + 1] > end:
                break  # this run goes on in the next row group
            run += 1
        start = end
    return [pieces for pieces in runs if pieces]


def read_batches(pieces: list[Piece], batch_rows: int) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(file, batch of at most `batch_rows` rows) over a run of row-group pieces, in order."""
    uri_open, opened = None, None  # a file's row groups are read through one open: its
    for uri, index, first, end in pieces:  # footer parsed once, not once per row group
        if uri != uri_open:
            uri_open, opened = uri, open_parquet(uri)
        seen = 0
        for batch in _checked(opened.iter_batches(batch_rows, row_groups=[index]), uri, index):
            lo, hi = max(first - seen, 0), min(end - seen, batch.num_rows)
            seen += batch.num_rows
            if lo >= hi:
                continue
            batch = batch.slice(lo, hi - lo)
            check_utf8(batch, f"{uri}: row group {index}", seen - hi + lo)
            if OFFSET not in batch.schema.names:  # as `read_documents` reads it
                batch = batch.append_column(OFFSET, pa.nulls(batch.num_rows, pa.int64()))
            yield uri, batch


def check_utf8(batch: pa.RecordBatch, where: str, first_row: int = 0) -> None:
    """Refuse string columns whose bytes are not UTF-8 (a writer that does not check them),
    naming `where` and the document, else its row (`first_row` is the batch's first row's
    number there): they failed inside a task's to_pylist, a traceback naming neither.
    Arrow's check runs at memory speed; the document is found only then."""
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid as err:
            named = "id" in batch.schema.names and field.name != "id"
            row = undecodable_row(column)
            which = row_name(batch.column("id") if named else None, row, first_row)
            raise InputError(
                f"{where}: {which}: column {field.name} is not UTF-8 ({err})"
            ) from None


def _checked(batches: Iterator[pa.RecordBatch], uri: str, index: int) -> Iterator[pa.RecordBatch]:
    """`batches`, with a page that cannot be read (damaged, or a network failure on a remote
    file; its footer was read well) named by file and row group."""
    try:
        yield from batches
    except (OSError, pa.ArrowException) as err:
        why = f"{type(err).__name__}: {err}"
        raise InputError(f"{uri}: row group {index}: cannot read it: {why}") from None
