"""Spark glue of the tokenize stage: sample text, then encode and write shards in one pass.

Each task reads a contiguous run of the input's Parquet row groups with pyarrow (planned by
row_groups.py), encodes whole batches (`encode_batch_fast`; the tokenizer travels as its JSON
text and is built once per Python worker) and writes its own shards: document text never
crosses into the JVM and nothing is shuffled. Which row groups a task reads depends on the
input files and `tokenize.partitions` only, so shard contents do not depend on the cluster's
size. Tasks write their rejected rows too (task_parquet.py) and return only their shard
entries and counts, so the stage is one Spark job over the input's row groups.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType
from tokenizers import Tokenizer

from curation.config import TokenizeConfig
from curation.spark.row_groups import Piece, read_batches
from curation.spark.stage import seeded_draw
from curation.spark.task_parquet import TaskParquet, finish_folders
from curation.tokenize import (
    DEFAULT_BUCKET,
    WHITE_SPACE,
    TokenizeError,
    document_hash,
    encode_documents,
    is_validation,
    pack_documents,
    reject_reason,
)
from refinery.manifest import VALIDATION
from refinery.tokenizer import tokenizer_from_json

BATCH_ROWS = 1024  # documents per encode_batch_fast call
# The tokenizer's training sample is brought to the driver a partition at a time: at least
# SAMPLE_PARTITIONS of them, each about SAMPLE_PARTITION_BYTES at most.
SAMPLE_PARTITIONS, SAMPLE_PARTITION_BYTES = 8, 64 << 20
REJECTED = "rejected"

_tokenizers: dict[str, Tokenizer] = {}


def _worker_tokenizer(json_text: str) -> Tokenizer:
    key = hashlib.sha256(json_text.encode()).hexdigest()
    if key not in _tokenizers:
        # Spark already runs one task per core; the library's own threads would oversubscribe.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        _tokenizers[key] = tokenizer_from_json(json_text)
    return _tokenizers[key]


def sample_texts(
    docs: DataFrame, sample_bytes: int, seed: int, validation_share: float
) -> Iterator[str]:
    """A seeded sample of about `sample_bytes` of non-empty training text (all of it if
    smaller). The documents the stage holds out for validation (`is_validation` with the same
    seed and share) are left out, so the tokenizer is not fitted on the text its bits per
    byte are measured on.

    A document is in the sample by a seeded hash of its id (`seeded_draw`), so the sample,
    and the tokenizer trained on it, do not depend on how Spark partitions the input.
    """
    texts = docs.select("id", "text").where(F.col("text").rlike(f"[^{WHITE_SPACE}]"))
    total = texts.select(F.sum(F.octet_length("text"))).first()[0] or 0
    if total > sample_bytes:
        texts = texts.where(seeded_draw(f"tokenizer-sample:{seed}") < sample_bytes / total)
    # One parallel scan draws the sample into a few partitions; toLocalIterator then runs one
    # small job per partition. On the input's own partitions it ran a whole-partition scan
    # per partition, one after another.
    parts = max(SAMPLE_PARTITIONS, math.ceil(min(total, sample_bytes) / SAMPLE_PARTITION_BYTES))
    texts = texts.repartition(parts, "id").sortWithinPartitions("id")
    for row in texts.toLocalIterator():  # the held-out test on the sample only, not the input
        if not is_validation(document_hash(row["id"], seed), validation_share):
            yield row["text"]


def rejected_schema(documents: StructType) -> pa.Schema:
    """The Arrow schema of rejected rows: the document columns, then `stage` and `reason`."""
    reasons = [StructField("stage", StringType()), StructField("reason", StringType())]
    return to_arrow_schema(StructType([*documents.fields, *reasons]), timezone="UTC")


class EncodeTask:
    """One task's pass: its row groups' documents encoded into shards under `shards`, rejected
    rows written to `rejected` (a TaskParquet with a `rejected` folder), counts kept."""

    def __init__(self, tokenizer: Tokenizer, config: TokenizeConfig, dtype: str, rejected, stage):
        self.tokenizer, self.config, self.dtype = tokenizer, config, dtype
        self.rejected: TaskParquet = rejected
        self.stage = stage
        self.counts: Counter[str] = Counter()

    def run(self, task: int, groups: list[Piece], shards: Path) -> list[dict]:
        """Write the shards; return their entries."""
        cfg = self.config
        return pack_documents(
            self.documents(groups),
            shards,
            task,
            cfg.shard_tokens,
            cfg.max_document_tokens,
            self.dtype,
        )

    def documents(self, groups: list[Piece]) -> Iterator[tuple[str, np.ndarray, int]]:
        """(bucket or `validation`, tokens with EOS, text bytes) of each kept document."""
        for uri, batch in read_batches(groups, BATCH_ROWS):
            missing = [c for c in ("id", "text") if c not in batch.schema.names]
            if missing:
                raise TokenizeError(f"{uri}: no column {missing} in this documents Parquet")
            yield from self.encoded(batch)

    def encoded(self, batch: pa.RecordBatch) -> Iterator[tuple[str, np.ndarray, int]]:
        cfg = self.config
        texts = batch.column("text").to_pylist()
        reasons = [reject_reason(t) for t in texts]
        if any(reasons):
            for row, reason in zip(batch.to_pylist(), reasons, strict=True):
                if reason:
                    self.rejected.add(REJECTED, {**row, "stage": self.stage, "reason": reason})
                    self.counts[f"rejected:{reason}"] += 1
        kept = [i for i, r in enumerate(reasons) if r is None]
        ids = batch.column("id").to_pylist()
        names = batch.schema.names
        buckets = batch.column("bucket").to_pylist() if "bucket" in names else None
        pieces = encode_documents(self.tokenizer, [texts[i] for i in kept], np.dtype(self.dtype))
        for i, tokens in zip(kept, pieces, strict=True):
            held_out = is_validation(document_hash(ids[i], cfg.seed), cfg.validation_share)
            prefix = VALIDATION if held_out else (buckets[i] if buckets else DEFAULT_BUCKET)
            self.counts["kept"] += 1
            self.counts["split"] += len(tokens) > cfg.max_document_tokens
            self.counts["validation"] += held_out
            yield prefix, tokens, len(texts[i].encode())


def encode_and_write(
    spark: SparkSession,
    docs: DataFrame,
    slices: list[list[Piece]],
    tokenizer_json: str,
    config: TokenizeConfig,
    dtype: str,
    shards: Path,
    tmp: str,
    stage: str,
) -> list[dict[str, Any]]:
    """Run one encode task per slice of `docs`' row groups (`row_slices`): shards go
    to `shards`, rejected rows to tmp/rejected/ (finished with _SUCCESS); return each task's
    report (its attempt, shard entries and counts), in task order."""
    tasks = list(enumerate(slices))
    schemas = {REJECTED: rejected_schema(docs.schema)}

    def run(items: Iterator[tuple[int, list[Piece]]]) -> Iterator[dict[str, Any]]:
        tokenizer = _worker_tokenizer(tokenizer_json)
        for task, groups in items:
            rejected = TaskParquet(tmp, task, schemas, BATCH_ROWS)
            work = EncodeTask(tokenizer, config, dtype, rejected, stage)
            entries = work.run(task, groups, shards)
            rejected.close()
            yield {
                "task": task,
                "attempt": rejected.attempt,
                "entries": entries,
                "counts": dict(work.counts),
            }

    reports = spark.sparkContext.parallelize(tasks, max(1, len(tasks))).mapPartitions(run)
    reports = sorted(reports.collect(), key=lambda report: report["task"])
    rejected = sum(
        n for r in reports for key, n in r["counts"].items() if key.startswith("rejected:")
    )
    finish_folders(tmp, schemas, {REJECTED: rejected}, [r["attempt"] for r in reports])
    return reports
