"""The contamination check's Spark glue: documents' hashed n-grams joined with the items'.

    documents (id, text) --mapInArrow: hashed word n-grams, distinct per document
                           [only those in the broadcast item set, when it is small]-->
    (id, ngram) --join (item ngram, key)--> (id, items) per contaminated document

Only the contaminated documents' ids and item keys, and the matched item keys, reach the
driver; the documents themselves never do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curation.contamination import ItemIndex, text_ngram_hashes

GRAM_SCHEMA = pa.schema([("id", pa.string()), ("ngram", pa.int64())])
GRAM_DDL = "id string, ngram bigint"
# Item n-gram sets up to this size are broadcast and filter documents' n-grams inside the
# task (a Python set of a million ints is ~60 MB per worker); larger ones are only joined.
BROADCAST_NGRAMS = 1_000_000
CONTAMINATED_COLUMN = "contaminated_items"


def ngram_batches(n: int, wanted=None):
    """mapInArrow function: (id, text) batches -> (id, ngram hash) rows, distinct per document;
    with `wanted` (a broadcast set of hashes) only the n-grams it holds."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keep = wanted.value if wanted is not None else None
        for batch in batches:
            ids: list[str] = []
            grams: list[int] = []
            for doc_id, text in zip(
                batch.column("id").to_pylist(), batch.column("text").to_pylist(), strict=True
            ):
                hashes = text_ngram_hashes(text or "", n)
                if keep is not None:
                    hashes &= keep
                ids += [doc_id] * len(hashes)
                grams += sorted(hashes)
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids, pa.string()), pa.array(grams, pa.int64())], schema=GRAM_SCHEMA
            )

    return run


def contaminated_documents(
    spark: SparkSession,
    docs: DataFrame,
    index: ItemIndex,
    n: int,
    broadcast_ngrams: int = BROADCAST_NGRAMS,
) -> DataFrame:
    """(id, contaminated_items: sorted item keys) for every document sharing an n-gram with an
    item; documents without overlap are absent."""
    wanted = None
    if len(index.ngrams) <= broadcast_ngrams:
        wanted = spark.sparkContext.broadcast(set(index.ngrams))
    doc_grams = docs.select("id", "text").mapInArrow(ngram_batches(n, wanted), GRAM_DDL)
    pairs = [(h, key) for h, keys in index.ngrams.items() for key in keys]
    item_grams = spark.createDataFrame(pairs, "ngram bigint, item string")
    if wanted is not None:
        item_grams = F.broadcast(item_grams)
    return (
        doc_grams.join(item_grams, "ngram")
        .groupBy("id")
        .agg(F.sort_array(F.collect_set("item")).alias(CONTAMINATED_COLUMN))
    )


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
