"""Apply curation functions to Spark DataFrames with mapInArrow: the per-stage glue.

Each function here runs inside Spark's Python workers. Heavy state (the extraction
process) is created once per worker and reused across tasks.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pyarrow as pa

from curation.config import ExtractConfig
from curation.extract import OUTCOME_FIELDS, extract_file
from curation.extractor import TimeLimitedExtractor

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


def spark_schema(arrow_schema: pa.Schema) -> str:
    """The DDL string mapInArrow needs, derived from the Arrow schema."""
    names = {
        pa.string(): "string",
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.timestamp("us", tz="UTC"): "timestamp",
    }
    return ", ".join(f"`{f.name}` {names[f.type]}" for f in arrow_schema)
