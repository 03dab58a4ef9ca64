"""Apply curation functions inside Spark's Python workers: the per-stage glue.

Extract and filter tasks write their own Parquet (task_parquet.py says why); filter tasks also
read their own share of the input's row groups (row_groups.py). Heavy state (the extraction
process) is created once per worker and reused across tasks.
"""

from __future__ import annotations

import atexit
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Broadcast
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from curation.config import ExtractConfig
from curation.extract import (
    DOCUMENT_FIELDS,
    ERROR,
    KEPT,
    OUTCOME_FIELDS,
    REJECTED,
    could_not_open,
    extract_file,
)
from curation.extractor import TimeLimitedExtractor
from curation.filters.base import LANGUAGE_COLUMN
from curation.filters.chain import FilterChain
from curation.inputs import InputError
from curation.spark.row_groups import Piece, read_batches
from curation.spark.stage import REQUIRED_COLUMNS
from curation.spark.task_parquet import TaskParquet
from refinery.errors import ExecutorSetupError

# Arrow types of the extract outcome rows, in OUTCOME_FIELDS order.
EXTRACT_ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("host", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("record_id", pa.string()),
        ("fetch_time", pa.timestamp("us", tz="UTC")),
        ("offset", pa.int64()),
        ("warc_type", pa.string()),
        ("http_status", pa.int32()),
        ("content_type", pa.string()),
        ("charset", pa.string()),
        ("html_bytes", pa.int64()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
    ]
)
assert tuple(EXTRACT_ARROW_SCHEMA.names) == OUTCOME_FIELDS
OUTCOME_FOLDERS = {KEPT: "kept", REJECTED: "rejected", ERROR: "errors"}


def rows_by_folder(counts: list[tuple[str, str, str | None, int]]) -> dict[str, int]:
    """The tasks' (source, outcome, reason, n) counts as rows per part-file folder."""
    rows: dict[str, int] = dict.fromkeys(OUTCOME_FOLDERS.values(), 0)
    for _, outcome, _, n in counts:
        rows[OUTCOME_FOLDERS[outcome]] += n
    return rows


_extractors: dict[tuple, TimeLimitedExtractor] = {}


def _extractor(config: ExtractConfig) -> TimeLimitedExtractor:
    key = (repr(config.trafilatura), config.timeout_seconds)
    if key not in _extractors:
        _extractors[key] = TimeLimitedExtractor(config.trafilatura, config.timeout_seconds)
        atexit.register(_extractors[key].close)
    return _extractors[key]


def extract_schemas(stage: str) -> dict[str, pa.Schema]:
    """Arrow schemas of the extract stage's kept, rejected and errors part files."""
    field = EXTRACT_ARROW_SCHEMA.field
    documents = [field(name) for name in DOCUMENT_FIELDS]
    stage_field = pa.field("stage", pa.string())
    return {
        "kept": pa.schema(documents),
        "rejected": pa.schema([*documents, stage_field, field("reason")]),
        "errors": pa.schema([field("source"), field("offset"), stage_field, field("error")]),
    }


def extract_parts(config: ExtractConfig, stage: str, tmp: str):
    """mapPartitions function: (task, WARC paths) -> one (attempt, counts, errors of the files
    that could not be opened) per task, counts being (source, outcome, reason, n); each task
    writes its outcome rows itself into tmp/{kept,rejected,errors} (task_parquet.py)."""
    schemas = extract_schemas(stage)

    def run(tasks: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[str, list, list[str]]]:
        extractor = _extractor(config)
        for task, paths in tasks:
            parts = TaskParquet(tmp, task, schemas, config.batch_rows)
            counts: Counter[tuple[str, str, str | None]] = Counter()
            unopened: list[str] = []
            for path in paths:
                for row in extract_file(path, config, extractor):
                    parts.add(OUTCOME_FOLDERS[row["outcome"]], {**row, "stage": stage})
                    counts[row["source"], row["outcome"], row["reason"]] += 1
                    if could_not_open(row):
                        unopened.append(f"{path}: {row['error']}")
            parts.close()
            yield parts.attempt, [(*key, n) for key, n in counts.items()], unopened

    return run


# Columns the filter tags each document with before its rows go to their folders.
FILTER_OUTCOME_SCHEMA = pa.schema(
    [("outcome", pa.string()), ("reason", pa.string()), ("error", pa.string())]
)
FILTER_BATCH_ROWS = 1024  # documents read per batch, and rows per row group written


def filter_schemas(documents: StructType, chain: FilterChain, stage: str) -> dict[str, pa.Schema]:
    """Arrow schemas of the filter stage's kept, rejected and errors part files. Kept rows have
    the input's document columns (with the steps' types for those they write), then the
    columns the steps add; rejected rows add `stage` and `reason`."""
    written = {"text": pa.string(), **chain.adds}
    docs = to_arrow_schema(documents, timezone="UTC")
    fields = [pa.field(f.name, written.get(f.name, f.type)) for f in docs]
    fields += [pa.field(name, t) for name, t in chain.adds.items() if name not in docs.names]
    kept = pa.schema(fields)
    stage_field, reason, error = (pa.field(n, pa.string()) for n in ("stage", "reason", "error"))
    return {
        "kept": kept,
        "rejected": pa.schema([*kept, stage_field, reason]),
        "errors": pa.schema([kept.field("source"), kept.field("offset"), stage_field, error]),
    }


def filter_parts(chain: Broadcast, schemas: dict[str, pa.Schema], stage: str, tmp: str):
    """mapPartitions function: (task, row groups) -> one (attempt, counts, counters) per task.
    Each task reads its row groups (row_groups.py), runs the chain on every document and writes
    its rows into tmp/{kept,rejected,errors} itself (task_parquet.py); counts are (source,
    outcome, reason, n) with an empty source (the filter's stats are not per file)."""
    kept = schemas["kept"]
    needed = [name for name in kept.names if name not in chain.value.adds]

    def run(tasks: Iterator[tuple[int, list[Piece]]]) -> Iterator[tuple[str, list, dict]]:
        steps: FilterChain = chain.value
        for task, groups in tasks:
            parts = TaskParquet(tmp, task, schemas, FILTER_BATCH_ROWS)
            counts: Counter[tuple[str, str | None]] = Counter()
            counters: Counter[str] = Counter()
            for uri, batch in read_batches(groups, FILTER_BATCH_ROWS):
                missing = [name for name in needed if name not in batch.schema.names]
                lacking = [name for name in missing if name in REQUIRED_COLUMNS]
                if lacking:
                    raise InputError(f"{uri}: no column {lacking} in this documents Parquet")
                batch = _with_nulls(batch, [kept.field(name) for name in missing])
                table, batch_counters = _filter_batch(steps, batch, kept)
                counters.update(batch_counters)
                _write_outcomes(parts, table, stage, counts)
            parts.close()
            rows = [("", outcome, reason, n) for (outcome, reason), n in counts.items()]
            yield parts.attempt, rows, counters

    return run


def _with_nulls(batch: pa.RecordBatch, fields: list[pa.Field]) -> pa.RecordBatch:
    """`batch` with null columns for `fields`: the inputs may be several stages' outputs, and
    Spark's schema is one file's (an extract part has no `cluster_id`)."""
    if not fields:
        return batch
    nulls = [pa.nulls(batch.num_rows, field.type) for field in fields]
    names = [*batch.schema.names, *(field.name for field in fields)]
    return pa.RecordBatch.from_arrays([*batch.columns, *nulls], names=names)


def _filter_batch(
    chain: FilterChain, batch: pa.RecordBatch, kept: pa.Schema
) -> tuple[pa.Table, Counter[str]]:
    """The batch's rows with `kept`'s columns (`text` as the steps left it, the steps' columns
    filled in) tagged with FILTER_OUTCOME_SCHEMA, and the chain's counters summed over them."""
    # An earlier run's `lang` is read too: without the language step in this chain, the
    # language-aware rules (stop words, bad words, end punctuation) would take every page as "en".
    carried = dict.fromkeys(n for n in (LANGUAGE_COLUMN, *chain.adds) if n in batch.schema.names)
    read = ["id", "url", "host", "text", *carried]
    columns = {name: batch.column(name).to_pylist() for name in read}
    written = ["text", *chain.adds]  # their types are kept's
    out: dict[str, list] = {name: [] for name in [*written, *FILTER_OUTCOME_SCHEMA.names]}
    counters: Counter[str] = Counter()
    for i in range(batch.num_rows):
        doc = {name: values[i] for name, values in columns.items()}
        try:
            verdict = chain.apply(doc)
            out["outcome"].append(KEPT if verdict.reason is None else REJECTED)
            out["reason"].append(verdict.reason)
            out["error"].append(None)
            counters.update(verdict.counters)
        except ExecutorSetupError:  # no document's fault: the task fails, saying why
            raise
        except Exception as err:  # one bad document becomes an errors/ row, not a failed task
            out["outcome"].append(ERROR)
            out["reason"].append(None)
            out["error"].append(f"filter of document {doc['id']}: {type(err).__name__}: {err}")
        for name in written:
            out[name].append(doc.get(name))
    # Passed-through columns keep the Arrow types they arrived with until the part file's cast.
    arrays = {f.name: pa.array(out[f.name], f.type) if f.name in out else None for f in kept}
    table = pa.table(
        {name: batch.column(name) if array is None else array for name, array in arrays.items()}
    )
    for field in FILTER_OUTCOME_SCHEMA:
        table = table.append_column(field, pa.array(out[field.name], field.type))
    return table, counters


def _write_outcomes(
    parts: TaskParquet, table: pa.Table, stage: str, counts: Counter[tuple[str, str | None]]
) -> None:
    """Each row of `table` into the folder of its outcome; (outcome, reason) counted."""
    outcomes = table.column("outcome")
    counts.update(zip(outcomes.to_pylist(), table.column("reason").to_pylist(), strict=True))
    for outcome, folder in OUTCOME_FOLDERS.items():
        rows = table.filter(pc.equal(outcomes, outcome))
        if rows.num_rows:
            stage_column = pa.array([stage] * rows.num_rows, pa.string())
            rows = rows.append_column("stage", stage_column)
            parts.add_table(folder, rows.select(parts.schemas[folder].names))
