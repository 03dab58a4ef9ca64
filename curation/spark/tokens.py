"""Spark glue of the tokenize stage: sample text, encode batches, write shards per task.

The tokenizer travels as its JSON text and is built once per Python worker; documents are
encoded a whole Arrow batch at a time (`encode_batch_fast`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType
from tokenizers import Tokenizer

from curation.config import TokenizeConfig
from curation.tokenize import (
    VALIDATION,
    document_hash,
    encode_documents,
    is_validation,
    pack_documents,
    reject_reason,
)
from refinery.tokenizer import tokenizer_from_json

# Columns the encode step adds to each document row.
ENCODED_FIELDS = StructType(
    [
        StructField("reason", StringType()),  # null = kept
        StructField("prefix", StringType()),  # bucket name, or "validation"
        StructField("order", LongType()),  # seeded hash: shard order
        StructField("tokens", BinaryType()),  # ids incl. EOS, little-endian shard dtype
        StructField("text_bytes", LongType()),
    ]
)
ARROW_TYPES = (pa.string(), pa.string(), pa.int64(), pa.binary(), pa.int64())
SHARD_ENTRY = "prefix string, path string, tokens bigint, documents bigint, bytes bigint"

_tokenizers: dict[str, Tokenizer] = {}


def _worker_tokenizer(json_text: str) -> Tokenizer:
    key = hashlib.sha256(json_text.encode()).hexdigest()
    if key not in _tokenizers:
        # Spark already runs one task per core; the library's own threads would oversubscribe.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        _tokenizers[key] = tokenizer_from_json(json_text)
    return _tokenizers[key]


def sample_texts(docs: DataFrame, sample_bytes: int, seed: int) -> Iterator[str]:
    """A seeded sample of about `sample_bytes` of non-empty text (all of it if smaller)."""
    texts = docs.select("text").where(F.col("text").isNotNull() & (F.trim("text") != ""))
    total = texts.select(F.sum(F.octet_length("text"))).first()[0] or 0
    if total > sample_bytes:
        texts = texts.sample(fraction=sample_bytes / total, seed=seed)
    for row in texts.toLocalIterator():
        yield row["text"]


def encode(docs: DataFrame, tokenizer_json: str, config: TokenizeConfig, dtype: str) -> DataFrame:
    """Documents (with a `bucket` column) + ENCODED_FIELDS; rejected rows carry a reason,
    kept rows carry tokens instead of text."""
    seed, share = config.seed, config.validation_share

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tokenizer = _worker_tokenizer(tokenizer_json)
        for batch in batches:
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            buckets = batch.column("bucket").to_pylist()
            reasons = [reject_reason(t) for t in texts]
            kept = [i for i, r in enumerate(reasons) if r is None]
            encoded = encode_documents(tokenizer, [texts[i] for i in kept], np.dtype(dtype))
            tokens: list[bytes | None] = [None] * len(texts)
            for i, doc in zip(kept, encoded, strict=True):
                tokens[i] = doc.tobytes()
            hashes = [document_hash(d, seed) for d in ids]
            prefixes = [
                VALIDATION if is_validation(h, share) else b
                for h, b in zip(hashes, buckets, strict=True)
            ]
            sizes = [len(t.encode()) if t is not None else 0 for t in texts]
            # Kept rows drop their text (the tokens stand for it): the JVM then caches and
            # moves a fraction of the bytes; rejected rows keep it for OUT/rejected/.
            kept_mask = pa.array([r is None for r in reasons])
            text = batch.column("text")
            text = pc.if_else(kept_mask, pa.scalar(None, text.type), text)
            batch = batch.set_column(batch.schema.get_field_index("text"), "text", text)
            columns = [reasons, prefixes, hashes, tokens, sizes]
            for name, kind, values in zip(ENCODED_FIELDS.names, ARROW_TYPES, columns, strict=True):
                batch = batch.append_column(name, pa.array(values, kind))
            yield batch

    schema = StructType([*docs.schema.fields, *ENCODED_FIELDS.fields])
    return docs.mapInArrow(run, schema)


def write_shards(kept: DataFrame, root: Path, config: TokenizeConfig, dtype: str) -> list[dict]:
    """Write kept rows into shards under `root` (a path every task can reach); return entries.

    Rows are spread over `config.partitions` tasks by their seeded hash and sorted by it, so
    shard contents depend on the input and the seed only, not on how Spark read the input.
    """
    shard_tokens, cap = config.shard_tokens, config.max_document_tokens

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        def documents():
            for batch in batches:
                for prefix, tokens, size in zip(
                    batch.column("prefix").to_pylist(),
                    batch.column("tokens").to_pylist(),
                    batch.column("text_bytes").to_pylist(),
                    strict=True,
                ):
                    yield prefix, np.frombuffer(tokens, dtype=dtype), size

        task = TaskContext.get().partitionId()
        entries = pack_documents(documents(), root, task, shard_tokens, cap, dtype)
        if entries:
            yield pa.RecordBatch.from_pylist(entries)

    ordered = (
        kept.select("prefix", "order", "tokens", "text_bytes")
        .repartition(config.partitions, "order")
        .sortWithinPartitions("prefix", "order")
    )
    return [row.asDict() for row in ordered.mapInArrow(run, SHARD_ENTRY).collect()]
