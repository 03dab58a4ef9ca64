"""Spark glue of the tokenize stage: sample text, then encode and write shards in one pass.

Each task reads a contiguous run of the input's Parquet row groups with pyarrow, encodes whole
batches (`encode_batch_fast`; the tokenizer travels as its JSON text and is built once per
Python worker) and writes its own shards: document text never crosses into the JVM and nothing
is shuffled. Which row groups a task reads depends on the input files and
`tokenize.partitions` only, so shard contents do not depend on the cluster's size. Rejected
rows return to Spark, which writes OUT/rejected/ as every stage does; each task's shard
entries and counts go to a small JSON file the driver reads once all tasks are done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from tokenizers import Tokenizer

from curation.config import TokenizeConfig
from curation.tokenize import (
    DEFAULT_BUCKET,
    VALIDATION,
    TokenizeError,
    contiguous_slices,
    document_hash,
    encode_documents,
    is_validation,
    pack_documents,
    reject_reason,
)
from refinery.tokenizer import tokenizer_from_json

BATCH_ROWS = 1024  # documents per encode_batch_fast call
TASK_FILE = "task-{:05d}.json"

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


def open_parquet(uri: str) -> pq.ParquetFile:
    """A Parquet file Spark listed (a path, file://, or any filesystem pyarrow knows)."""
    parsed = urlparse(uri)
    try:
        if parsed.scheme in ("", "file"):
            source = unquote(parsed.path) if parsed.scheme else uri
        else:
            filesystem, path = pafs.FileSystem.from_uri(uri)
            source = filesystem.open_input_file(path)
        # Spark writes timestamps as INT96 by default; microseconds are what it reads back.
        return pq.ParquetFile(source, coerce_int96_timestamp_unit="us")
    except (OSError, pa.ArrowException) as err:
        raise TokenizeError(f"{uri}: cannot read it as Parquet: {err}") from None


def row_group_slices(spark: SparkSession, files: list[str], parts: int) -> list[list[tuple]]:
    """The input's row groups, (file, index) in file order, cut into at most `parts` runs of
    about equal bytes; the footers are read in Spark tasks."""

    def row_groups(uri: str) -> list[tuple[str, int, int]]:
        meta = open_parquet(uri).metadata
        return [(uri, i, meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups)]

    files = sorted(files)
    slices = max(1, min(len(files), spark.sparkContext.defaultParallelism))
    groups = sorted(spark.sparkContext.parallelize(files, slices).flatMap(row_groups).collect())
    runs = contiguous_slices([size for _, _, size in groups], parts)
    return [[groups[i][:2] for i in run] for run in runs]


def rejected_schema(documents: StructType) -> StructType:
    reasons = [StructField("stage", StringType()), StructField("reason", StringType())]
    return StructType([*documents.fields, *reasons])


class EncodeTask:
    """One task's pass: its row groups' documents encoded into shards under `shards`; rejected
    rows and counts kept for the driver."""

    def __init__(self, tokenizer: Tokenizer, config: TokenizeConfig, dtype: str, columns, stage):
        self.tokenizer, self.config, self.dtype = tokenizer, config, dtype
        self.columns, self.stage = columns, stage
        self.rejected: list[tuple] = []
        self.counts: Counter[str] = Counter()

    def run(self, task: int, groups: list[tuple[str, int]], shards: Path) -> list[dict]:
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

    def documents(self, groups: list[tuple[str, int]]) -> Iterator[tuple[str, np.ndarray, int]]:
        """(bucket or `validation`, tokens with EOS, text bytes) of each kept document."""
        for uri, index in groups:
            for batch in open_parquet(uri).iter_batches(BATCH_ROWS, row_groups=[index]):
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
                    self.rejected.append((*(row.get(c) for c in self.columns), self.stage, reason))
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
            yield prefix, tokens, len(texts[i].encode())


def encode_and_write(
    spark: SparkSession,
    docs: DataFrame,
    tokenizer_json: str,
    config: TokenizeConfig,
    dtype: str,
    shards: Path,
    tasks_dir: Path,
    stage: str,
) -> tuple[DataFrame, int]:
    """The encode tasks over `docs`' files: (their rejected rows, the number of tasks).

    Writing the rejected rows is the action that runs the tasks; `task_reports` then reads
    what each task wrote to `tasks_dir`.
    """
    tasks = list(enumerate(row_group_slices(spark, docs.inputFiles(), config.partitions)))
    columns = docs.columns

    def run(items: Iterator[tuple[int, list[tuple[str, int]]]]) -> Iterator[tuple]:
        tokenizer = _worker_tokenizer(tokenizer_json)
        for task, groups in items:
            work = EncodeTask(tokenizer, config, dtype, columns, stage)
            report = {"entries": work.run(task, groups, shards), "counts": dict(work.counts)}
            partial = tasks_dir / f".{TASK_FILE.format(task)}.tmp"
            partial.write_text(json.dumps(report), encoding="utf-8")
            os.replace(partial, tasks_dir / TASK_FILE.format(task))
            yield from work.rejected

    rows = spark.sparkContext.parallelize(tasks, max(1, len(tasks))).mapPartitions(run)
    return spark.createDataFrame(rows, rejected_schema(docs.schema)), len(tasks)


def task_reports(tasks_dir: Path, tasks: int) -> list[dict[str, Any]]:
    """Every task's report, refusing to go on if one is missing."""
    reports = []
    for task in range(tasks):
        path = tasks_dir / TASK_FILE.format(task)
        if not path.is_file():
            raise TokenizeError(f"tokenize task {task} left no report at {path}")
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    return reports
