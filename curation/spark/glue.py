"""Apply curation functions to Spark DataFrames with mapInArrow: the per-stage glue.

Each function here runs inside Spark's Python workers. Heavy state (the extraction
process) is created once per worker and reused across tasks.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pyarrow as pa
from pyspark import Broadcast
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from curation.config import ExtractConfig
from curation.extract import OUTCOME_FIELDS, extract_file
from curation.extractor import TimeLimitedExtractor
from curation.filters.chain import FilterChain

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

_extractors: dict[tuple, TimeLimitedExtractor] = {}


def _extractor(config: ExtractConfig) -> TimeLimitedExtractor:
    key = (repr(config.trafilatura), config.timeout_seconds)
    if key not in _extractors:
        _extractors[key] = TimeLimitedExtractor(config.trafilatura, config.timeout_seconds)
        atexit.register(_extractors[key].close)
    return _extractors[key]


def extract_batches(config: ExtractConfig):
    """mapInArrow function: batches of `path` rows -> batches of extract outcome rows."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        extractor = _extractor(config)
        rows = []
        for batch in batches:
            for source in batch.column("path").to_pylist():
                for row in extract_file(source, config, extractor):
                    rows.append(row)
                    if len(rows) >= config.batch_rows:
                        yield pa.RecordBatch.from_pylist(rows, schema=EXTRACT_ARROW_SCHEMA)
                        rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=EXTRACT_ARROW_SCHEMA)

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
