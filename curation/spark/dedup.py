"""The dedup stage's Spark glue: keys per document, then URL, exact and near duplicate groups.

    keys (mapInArrow: normalised URL, text hash, LSH band keys, signature)   one pass, cached
      -> URL groups      window per url_key, latest (or earliest) fetch first
      -> exact groups    window per text_hash over the URL survivors, keep rule first
      -> near groups     buckets (band, key) -> star edges -> [verify] -> components
    every document -> (cluster_id, survivor of its cluster, reason)

A document removed at an earlier step joins the cluster of the document that removed it, so
every cluster has exactly one survivor, `kept_id` names it, and `cluster_id` is the smallest
document id of the near-duplicate component.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from curation.config import DedupConfig
from curation.dedup.keep import keep_order
from curation.dedup.minhash import EMPTY, ShingleSpec, band_keys, make_signer
from curation.dedup.text import exact_key, normalize_url
from curation.spark.checkpoints import Checkpoint, local_checkpoint
from curation.spark.components import connected_components, pair_edges, star_edges
from curation.spark.row_groups import check_utf8
from curation.spark.stage import check_numeric, split_repeated_ids

# Text signed at once: 512 pages of books or 200 KB each held 1.6 GB in one Python worker.
SIGNED_TEXT_BYTES = 16 << 20
# LSH buckets of up to this many documents have every pair verified (at most 120 pairs);
# larger ones, rare outside boilerplate, link each member to the smallest id.
PAIRED_BUCKET = 16

KEY_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url_key", pa.string()),
        ("text_hash", pa.string()),
        ("bands", pa.list_(pa.int64())),  # null: no shingles (or near dedup off)
        ("signature", pa.list_(pa.int32())),  # null unless candidate edges are verified
    ]
)
KEY_DDL = "id string, url_key string, text_hash string, bands array<bigint>, signature array<int>"


def key_batches(config: DedupConfig):
    """mapInArrow function: (id, url, text) batches -> KEY_SCHEMA batches."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        minhash = config.minhash
        spec = ShingleSpec(minhash.shingle, minhash.ngram)
        signer = make_signer(minhash.implementation, spec, minhash.num_perm, minhash.seed)
        for batch in batches:
            sizes = pc.fill_null(pc.binary_length(batch.column("text")), 0).to_numpy()
            for first, last in batch_slices(sizes, minhash.batch_rows, SIGNED_TEXT_BYTES):
                yield document_keys(batch.slice(first, last - first), signer, config)

    return run


def batch_slices(sizes: np.ndarray, max_rows: int, max_bytes: int) -> Iterator[tuple[int, int]]:
    """[first, last) row ranges of at most `max_rows` rows and, unless one row alone is more,
    `max_bytes` of text: the vectorised signer holds ~60 bytes per character of its batch."""
    first, total = 0, len(sizes)
    ends = np.cumsum(sizes)
    while first < total:
        start = int(ends[first - 1]) if first else 0
        fits = int(np.searchsorted(ends, start + max_bytes, side="right"))
        last = min(first + max_rows, max(fits, first + 1))
        yield first, last
        first = last


def document_keys(batch: pa.RecordBatch, signer, config: DedupConfig) -> pa.RecordBatch:
    """The keys of one batch of documents; signatures only when near dedup needs them."""
    check_utf8(batch, "dedup")
    texts = [t or "" for t in batch.column("text").to_pylist()]
    rows = len(texts)
    bands: list = [None] * rows
    signatures: list = [None] * rows
    if config.near:
        matrix = signer.signatures(texts)
        keys = band_keys(matrix, config.minhash.bands, config.minhash.rows).tolist()
        empty = (matrix == EMPTY).all(axis=1).tolist()
        bands = [None if e else k for e, k in zip(empty, keys, strict=True)]
        if config.verify:
            signatures = matrix.view(np.int32).tolist()
    columns = [
        batch.column("id"),
        pa.array([normalize_url(u) for u in batch.column("url").to_pylist()], pa.string()),
        pa.array([exact_key(t) for t in texts], pa.string()),
        pa.array(bands, pa.list_(pa.int64())),
        pa.array(signatures, pa.list_(pa.int32())),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=KEY_SCHEMA)


def _order(rule_keys: list[tuple[str, bool]]) -> list[Column]:
    return [
        F.col(c).desc_nulls_last() if descending else F.col(c).asc_nulls_last()
        for c, descending in rule_keys
    ]


def _first_by(df: DataFrame, group: str, order: list[Column], name: str) -> DataFrame:
    """Adds `name`: the id of the first row of each `group` in `order`. Rows without a
    `group` key (no URL, no words) share no page or text: each is its own first."""
    first = F.first("id").over(Window.partitionBy(group).orderBy(*order))
    return df.withColumn(name, F.when(F.col(group).isNull(), F.col("id")).otherwise(first))


def verified(edges: DataFrame, signatures: DataFrame, threshold: float) -> DataFrame:
    """Candidate edges whose two signatures agree on at least `threshold` of their positions."""
    node = signatures.select(F.col("id").alias("node"), F.col("signature").alias("a"))
    parent = signatures.select(F.col("id").alias("parent"), F.col("signature").alias("b"))
    agree = F.expr("size(filter(zip_with(a, b, (x, y) -> x = y), t -> t)) / size(a)")
    return (
        edges.join(node, "node")
        .join(parent, "parent")
        .where(agree >= threshold)
        .select("node", "parent")
    )


def dedup_decisions(
    docs: DataFrame, config: DedupConfig, checkpoint: Checkpoint = local_checkpoint
) -> DataFrame:
    """(id, cluster_id, kept_id, reason) for every document; reason is null for survivors."""
    # the score matters to keep=quality alone: another rule reads no column it does not need
    has_quality = "quality_score" in docs.columns and config.keep == "quality"
    if has_quality:
        check_numeric(docs, "quality_score")
    keep = _order(keep_order(config.keep, has_quality))
    keys = docs.select("id", "url", "text").mapInArrow(key_batches(config), KEY_DDL)
    score = (F.col("quality_score") if has_quality else F.lit(None)).cast("double")
    facts = docs.select(
        "id",
        "fetch_time",
        F.length("text").alias("text_length"),
        # NaN (a score from numpy) is no score: Spark sorts it above every number
        F.nanvl(score, F.lit(None).cast("double")).alias("quality_score"),
    )
    # Signatures are computed once; every step below reads this checkpointed table.
    info = checkpoint(facts.join(keys, "id"))

    fetch = F.col("fetch_time")
    url_order = [fetch.desc_nulls_last() if config.url_keep == "latest" else fetch.asc_nulls_last()]
    if config.url:
        info = _first_by(info, "url_key", [*url_order, F.col("id").asc()], "url_parent")
    else:
        info = info.withColumn("url_parent", F.col("id"))
    unique_urls = info.where(F.col("id") == F.col("url_parent"))
    if config.exact:
        unique_urls = _first_by(unique_urls, "text_hash", keep, "exact_parent")
    else:
        unique_urls = unique_urls.withColumn("exact_parent", F.col("id"))
    unique_texts = unique_urls.where(F.col("id") == F.col("exact_parent"))

    components = _near_components(unique_texts, config, checkpoint)
    near = unique_texts.join(
        components, unique_texts["id"] == components["node"], "left"
    ).withColumn("cluster_id", F.coalesce("component", "id"))
    near = _first_by(near, "cluster_id", keep, "kept_id").select(
        "id",
        "cluster_id",
        "kept_id",
        F.when(F.col("id") != F.col("kept_id"), "near_duplicate").alias("reason"),
    )
    exact = _removed(unique_urls, "exact_parent", near, "exact_duplicate")
    url = _removed(info, "url_parent", near.unionByName(exact), "url_duplicate")
    return near.unionByName(exact).unionByName(url)


def _removed(rows: DataFrame, parent: str, resolved: DataFrame, reason: str) -> DataFrame:
    """Rows whose `parent` is another document take that document's cluster and survivor."""
    clusters = resolved.select(F.col("id").alias(parent), "cluster_id", "kept_id")
    return (
        rows.where(F.col("id") != F.col(parent))
        .join(clusters, parent)
        .select("id", "cluster_id", "kept_id", F.lit(reason).alias("reason"))
    )


def _near_components(
    unique_texts: DataFrame, config: DedupConfig, checkpoint: Checkpoint = local_checkpoint
) -> DataFrame:
    """(node, component) for the documents with a near duplicate."""
    members = unique_texts.where(F.col("bands").isNotNull()).select(
        "id", F.posexplode("bands").alias("band", "key")
    )
    if config.verify:  # each pair that collided is checked, not each member against one
        edges = pair_edges(members, ["band", "key"], PAIRED_BUCKET)
        edges = verified(edges, unique_texts.select("id", "signature"), config.verify_threshold)
    else:
        edges = star_edges(members, ["band", "key"])
    return connected_components(edges, config.max_iterations, checkpoint)


def dedup_outcomes(
    docs: DataFrame, config: DedupConfig, checkpoint: Checkpoint = local_checkpoint
) -> tuple[DataFrame, list[str]]:
    """Outcome rows for `write_stage` (kept / rejected + cluster_id, kept_id) and the kept
    document columns (the input's, with cluster_id). The other copies of a repeated id (one
    WARC record read twice) are rejected as `duplicate_record`, in the first copy's cluster."""
    docs, copies = split_repeated_ids(docs.drop("cluster_id"))  # decisions join back by id
    decisions = dedup_decisions(docs, config, checkpoint)
    error = F.lit(None).cast("string").alias("error")
    rows = docs.join(decisions, "id").select(
        *docs.columns,
        "cluster_id",
        "kept_id",
        "reason",
        F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("outcome"),
        error,
    )
    if copies is not None:
        repeated = copies.join(decisions, "id").select(
            *docs.columns,
            "cluster_id",
            "kept_id",
            F.lit("duplicate_record").alias("reason"),
            F.lit("rejected").alias("outcome"),
            error,
        )
        rows = rows.unionByName(repeated)
    return rows, [*docs.columns, "cluster_id"]
