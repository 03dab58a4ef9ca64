"""The contamination check's Spark glue: documents' hashed n-grams against the items'.

    item index small (the usual case: a few hundred thousand n-grams):
        broadcast {ngram hash: item keys} and its sorted hashes; mapInArrow looks every
        document n-gram up (numpy searchsorted) and emits (id, item) only for hits
    item index large:
        broadcast its sorted hashes alone (8 bytes an n-gram); mapInArrow emits (id, ngram
        hash) for hits only, joined with (ngram, item) as a DataFrame
    then (id, item) -> groupBy id -> (id, contaminated_items)

No path shuffles every n-gram of every document (about 4,000 rows per web page).

Only the contaminated documents' ids and item keys, and the matched item keys, reach the
driver; the documents themselves never do.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curation.contamination import ItemIndex, text_ngram_hashes
from curation.spark.row_groups import check_utf8

# Item indexes up to this many n-grams are broadcast whole (a Python dict of a million ints to
# short key lists is ~150 MB per worker); larger ones as their sorted hashes (8 MB a million),
# the hits then joined with the items as a DataFrame.
BROADCAST_NGRAMS = 1_000_000
CONTAMINATED_COLUMN = "contaminated_items"
MATCH_SCHEMA = pa.schema([("id", pa.string()), ("item", pa.string())])
NGRAM_SCHEMA = pa.schema([("id", pa.string()), ("ngram", pa.int64())])


def _documents(batch: pa.RecordBatch, lengths: tuple[int, ...]) -> Iterator[tuple[str, np.ndarray]]:
    check_utf8(batch, "contamination")
    texts = batch.column("text").to_pylist()
    for doc_id, text in zip(batch.column("id").to_pylist(), texts, strict=True):
        yield doc_id, text_ngram_hashes(text or "", lengths)


def sorted_hashes(index: ItemIndex) -> np.ndarray:
    return np.sort(np.fromiter(index.ngrams, dtype=np.int64, count=len(index.ngrams)))


def broadcast_index(index: ItemIndex) -> tuple[dict[int, list[str]], np.ndarray]:
    """What `match_batches` looks documents up in: {ngram hash: item keys}, hashes sorted."""
    return index.ngrams, sorted_hashes(index)


def known_hashes(hashes: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The `hashes` that are in `known` (sorted)."""
    if not len(known):
        return hashes[:0]
    at = np.searchsorted(known, hashes).clip(max=len(known) - 1)
    return hashes[known[at] == hashes]


def match_batches(lengths: tuple[int, ...], index):
    """mapInArrow function: (id, text) -> (id, item) for every item sharing an n-gram with the
    document; `index` is the broadcast ({ngram hash: item keys}, its hashes sorted as int64)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        lookup, known = index.value
        for batch in batches:
            ids: list[str] = []
            items: list[str] = []
            for doc_id, hashes in _documents(batch, lengths):
                found = known_hashes(hashes, known).tolist()
                hits = sorted({key for h in found for key in lookup[h]})
                ids += [doc_id] * len(hits)
                items += hits
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids, pa.string()), pa.array(items, pa.string())], schema=MATCH_SCHEMA
            )

    return run


def hit_batches(lengths: tuple[int, ...], known):
    """mapInArrow function: (id, text) -> (id, ngram hash) for each distinct n-gram of the
    document that the index holds; `known` is the broadcast sorted hashes."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        hashes_known = known.value
        for batch in batches:
            ids: list[str] = []
            grams = [np.zeros(0, dtype=np.int64)]
            for doc_id, hashes in _documents(batch, lengths):
                hits = known_hashes(hashes, hashes_known)
                ids += [doc_id] * len(hits)
                grams.append(hits)
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids, pa.string()), pa.array(np.concatenate(grams))],
                schema=NGRAM_SCHEMA,
            )

    return run


def contaminated_documents(
    spark: SparkSession,
    docs: DataFrame,
    index: ItemIndex,
    broadcast_ngrams: int = BROADCAST_NGRAMS,
) -> DataFrame:
    """(id, contaminated_items: sorted item keys) for every document sharing an n-gram with an
    item (of any length in `index.lengths`); documents without overlap are absent."""
    texts = docs.select("id", "text")
    if len(index.ngrams) <= broadcast_ngrams:
        lookup = spark.sparkContext.broadcast(broadcast_index(index))
        matches = texts.mapInArrow(match_batches(index.lengths, lookup), "id string, item string")
    else:
        pairs = [(h, key) for h, keys in index.ngrams.items() for key in keys]
        item_grams = spark.createDataFrame(
            pa.table({"ngram": [p[0] for p in pairs], "item": [p[1] for p in pairs]})
        )
        known = spark.sparkContext.broadcast(sorted_hashes(index))
        hits = texts.mapInArrow(hit_batches(index.lengths, known), "id string, ngram bigint")
        # Spark cannot size the hits (it guesses from the documents' Parquet) and might
        # broadcast them: hash the items' side, shuffle both
        items = item_grams.hint("shuffle_hash")
        matches = hits.join(items, "ngram").select("id", "item")
    return matches.groupBy("id").agg(F.sort_array(F.collect_set("item")).alias(CONTAMINATED_COLUMN))


def shard_documents(spark: SparkSession, tokens_dir: str) -> DataFrame:
    """(id, text) of every training document in a tokens folder (OUT/tokens: the manifest's
    buckets; the validation split is never trained on and is left out), decoded in the tasks
    with the manifest's tokenizer. An id is `<shard path>#<index>`. The tokenize stage cuts
    documents longer than its max_document_tokens into pieces, so an n-gram across a cut is
    not seen."""
    from refinery.manifest import read_manifest
    from refinery.shards import open_shard

    manifest = read_manifest(tokens_dir)
    tokenizer_file = str(manifest.tokenizer_path)
    tokenizer_json = manifest.tokenizer_path.read_text(encoding="utf-8")
    dtype = manifest.dtype
    shards = [
        (str(entry.path), str(entry.path.relative_to(manifest.root)), entry.tokens, entry.documents)
        for split in manifest.buckets.values()
        for entry in split.shards
    ]
    for path, _, tokens, documents in shards:  # damage named here, not in a task's traceback
        open_shard(path, tokens, documents, dtype)

    def decode(shard: tuple[str, str, int, int]) -> Iterator[tuple[str, str]]:
        from refinery.tokenizer import tokenizer_from_json

        path, name, tokens, documents = shard
        tokenizer = tokenizer_from_json(tokenizer_json, tokenizer_file)
        opened = open_shard(path, tokens, documents, dtype)
        for i in range(opened.num_docs):
            ids = opened.document(i).tolist()
            yield f"{name}#{i}", tokenizer.decode(ids, skip_special_tokens=True)

    rdd = spark.sparkContext.parallelize(shards, max(1, len(shards))).flatMap(decode)
    return spark.createDataFrame(rdd, "id string, text string")


def contaminated_item_keys(contaminated: DataFrame) -> list[str]:
    """The distinct item keys that any document overlaps (at most the number of items)."""
    rows = contaminated.select(F.explode(CONTAMINATED_COLUMN).alias("item")).distinct().collect()
    return sorted(r["item"] for r in rows)


def decontamination_outcomes(
    docs: DataFrame, contaminated: DataFrame
) -> tuple[DataFrame, list[str]]:
    """Outcome rows for `write_stage`: a document overlapping any item is rejected with reason
    `contaminated` and the item keys; every other document is kept unchanged."""
    docs = docs.drop(CONTAMINATED_COLUMN)  # a copy decontaminated before is checked afresh
    rows = docs.join(contaminated, "id", "left").select(
        *docs.columns,
        CONTAMINATED_COLUMN,
        F.when(F.col(CONTAMINATED_COLUMN).isNull(), F.lit(None).cast("string"))
        .otherwise(F.lit("contaminated"))
        .alias("reason"),
        F.when(F.col(CONTAMINATED_COLUMN).isNull(), "kept").otherwise("rejected").alias("outcome"),
        F.lit(None).cast("string").alias("error"),
    )
    return rows, list(docs.columns)
