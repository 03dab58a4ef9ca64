"""Apply curation functions inside Spark's Python workers: the per-stage glue.

Extract tasks write their own Parquet (task_parquet.py says why); the filter stage maps
Arrow batches of documents with mapInArrow. Heavy state (the extraction process) is created
once per worker and reused across tasks.
"""

from __future__ import annotations

import atexit
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
from pyspark import Broadcast
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from curation.config import ExtractConfig
from curation.extract import DOCUMENT_FIELDS, ERROR, KEPT, OUTCOME_FIELDS, REJECTED, extract_file
from curation.extractor import TimeLimitedExtractor
from curation.filters.chain import FilterChain
from curation.spark.task_parquet import TaskParquet

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
    """mapPartitions function: (task, WARC paths) -> (source, outcome, reason, n) counts; each
    task writes its outcome rows itself into tmp/{kept,rejected,errors} (task_parquet.py)."""
    schemas = extract_schemas(stage)

    def run(tasks: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[str, str, str | None, int]]:
        extractor = _extractor(config)
        for task, paths in tasks:
            parts = TaskParquet(tmp, task, schemas, config.batch_rows)
            counts: Counter[tuple[str, str, str | None]] = Counter()
            for path in paths:
                for row in extract_file(path, config, extractor):
                    parts.add(OUTCOME_FOLDERS[row["outcome"]], {**row, "stage": stage})
                    counts[row["source"], row["outcome"], row["reason"]] += 1
            parts.close()
            for (source, outcome, reason), n in counts.items():
                yield source, outcome, reason, n

    return run


def spark_schema(arrow_schema: pa.Schema) -> StructType:
    """The Spark schema mapInArrow needs, derived from the Arrow schema."""
    return from_arrow_schema(arrow_schema)


# Columns the filter stage appends to every document row, after the steps' own columns.
FILTER_OUTCOME_SCHEMA = pa.schema(
    [
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("counters", pa.map_(pa.string(), pa.int64())),
    ]
)


def filter_output_schema(documents: StructType, chain: FilterChain) -> StructType:
    """Input document columns, then the columns the steps add (unless already there), then
    the outcome columns."""
    added = [pa.field(n, t) for n, t in chain.adds.items() if n not in documents.fieldNames()]
    extra = from_arrow_schema(pa.schema([*added, *FILTER_OUTCOME_SCHEMA]))
    return StructType([*documents.fields, *extra.fields])


def filter_batches(chain: Broadcast, schema: StructType):
    """mapInArrow function: document batches -> the same rows, `text` as the steps left it,
    the steps' columns filled in, tagged kept / rejected / error with the chain's counters."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        steps: FilterChain = chain.value
        for batch in batches:
            yield _filter_batch(steps, batch, schema)

    return run


def _filter_batch(chain: FilterChain, batch: pa.RecordBatch, schema: StructType) -> pa.RecordBatch:
    read = ["id", "url", "host", "text", *(n for n in chain.adds if n in batch.schema.names)]
    columns = {name: batch.column(name).to_pylist() for name in read}
    written = {"text": pa.string(), **chain.adds}
    out: dict[str, list] = {name: [] for name in [*written, *FILTER_OUTCOME_SCHEMA.names]}
    for i in range(batch.num_rows):
        doc = {name: values[i] for name, values in columns.items()}
        try:
            verdict = chain.apply(doc)
            out["outcome"].append("kept" if verdict.reason is None else "rejected")
            out["reason"].append(verdict.reason)
            out["error"].append(None)
            out["counters"].append(sorted(verdict.counters.items()))
        except Exception as err:  # one bad document becomes an errors/ row, not a failed task
            out["outcome"].append("error")
            out["reason"].append(None)
            out["error"].append(f"filter of document {doc['id']}: {type(err).__name__}: {err}")
            out["counters"].append([])
        for name in written:
            out[name].append(doc.get(name))
    # Passed-through columns keep the Arrow types they arrived with; new ones get theirs.
    types = {**written, **{f.name: f.type for f in FILTER_OUTCOME_SCHEMA}}
    fields, arrays = [], []
    for name in schema.fieldNames():
        if name in out:
            fields.append(pa.field(name, types[name]))
            arrays.append(pa.array(out[name], types[name]))
        else:
            fields.append(batch.schema.field(name))
            arrays.append(batch.column(name))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
