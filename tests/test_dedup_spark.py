"""Dedup in Spark: connected components on known graphs, signatures across partitionings,
and the stage end to end on the sample crawl (stats add up, one survivor per component)."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from pyspark.sql import functions as F

from curation.config import DedupConfig, load_curation_config
from curation.dedup.keep import UnionFind
from curation.inputs import InputError
from curation.spark.components import connected_components, pair_edges, star_edges
from curation.spark.dedup import (
    KEY_DDL,
    dedup_decisions,
    dedup_outcomes,
    key_batches,
    verified,
)
from curation.spark.stage import check_unique_ids


def components(spark, edges: list[tuple[int, int]]) -> dict[int, int]:
    rows = [(max(a, b), min(a, b)) for a, b in edges if a != b]
    df = spark.createDataFrame(rows, "node long, parent long")
    return {r["node"]: r["component"] for r in connected_components(df).collect()}


def reference(edges: list[tuple[int, int]]) -> dict[int, int]:
    return UnionFind().components((a, b) for a, b in edges if a != b)


def chain(nodes: list[int]) -> list[tuple[int, int]]:
    return list(zip(nodes, nodes[1:], strict=False))


HAND_MADE = {
    # a chain whose labels run against its order, so the minimum has to travel the length
    "chain": chain([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10, 11, 12]),
    "star": [(5, leaf) for leaf in (0, 1, 2, 3, 4, 6, 7, 8)],
    "disjoint cliques": [
        (a, b)
        for group in ([0, 1, 2, 3], [10, 11, 12], [20, 21])
        for a in group
        for b in group
        if a < b
    ],
    "two stars joined through their leaves": [(0, 1), (0, 2), (3, 4), (3, 5), (2, 5)],
}


@pytest.mark.parametrize("name", HAND_MADE)
def test_components_of_hand_made_graphs(spark, name):
    edges = HAND_MADE[name]
    assert components(spark, edges) == reference(edges)


def test_components_equal_union_find_on_random_graphs(spark):
    rng = random.Random(11)
    for nodes, edge_count in [(40, 25), (200, 180), (300, 600)]:
        labels = rng.sample(range(10**6), nodes)  # labels unrelated to structure
        edges = [tuple(rng.sample(labels, 2)) for _ in range(edge_count)]
        assert components(spark, edges) == reference(edges)


def test_star_edges_link_each_member_to_the_bucket_minimum(spark):
    members = spark.createDataFrame(
        [("c", 0, 7), ("a", 0, 7), ("b", 0, 7), ("a", 1, 9), ("d", 1, 9), ("e", 1, 8)],
        "id string, band int, key long",
    )
    edges = {(r["node"], r["parent"]) for r in star_edges(members, ["band", "key"]).collect()}
    assert edges == {("b", "a"), ("c", "a"), ("d", "a")}


def test_small_buckets_give_every_pair_large_ones_a_star(spark):
    members = spark.createDataFrame(
        [("c", 0, 7), ("a", 0, 7), ("b", 0, 7), ("a", 1, 9), ("d", 1, 9), ("e", 1, 8)],
        "id string, band int, key long",
    )
    pairs = {(r["node"], r["parent"]) for r in pair_edges(members, ["band", "key"], 3).collect()}
    assert pairs == {("b", "a"), ("c", "a"), ("c", "b"), ("d", "a")}
    star = {(r["node"], r["parent"]) for r in pair_edges(members, ["band", "key"], 2).collect()}
    assert star == {("b", "a"), ("c", "a"), ("d", "a")}


def test_two_near_duplicates_are_linked_whatever_shares_their_bucket(spark):
    """A snippet with the smallest id shares one LSH band with two near-duplicate pages: a
    star would check both pages against the snippet only, and link neither."""
    from curation.spark.dedup import _near_components

    pages = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    rows = [
        ("a_snippet", [5], [1, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("b_page", [5], pages),
        ("c_page", [5], [*pages[:8], 0, 0]),  # 8 of 10 positions agree with b_page
    ]
    unique = spark.createDataFrame(rows, "id string, bands array<bigint>, signature array<int>")
    found = {r["node"]: r["component"] for r in _near_components(unique, DedupConfig()).collect()}
    assert found == {"c_page": "b_page", "b_page": "b_page"}


def test_verification_drops_edges_whose_signatures_disagree(spark):
    signatures = spark.createDataFrame(
        [("a", [1, 2, 3, 4]), ("b", [1, 2, 3, 9]), ("c", [1, 2, 8, 9])],
        "id string, signature array<int>",
    )
    edges = spark.createDataFrame([("b", "a"), ("c", "a")], "node string, parent string")
    kept = verified(edges, signatures, threshold=0.7).collect()
    assert [(r["node"], r["parent"]) for r in kept] == [("b", "a")]  # 3/4 agree; c: 2/4


def test_other_copies_of_a_repeated_id_are_rejected_as_duplicate_records(spark):
    docs = spark.createDataFrame(
        [
            ("x", "b.warc.gz", 7, "https://a.test/", "one page of text"),
            ("x", "a.warc.gz", 90, "https://a.test/", "one page of text"),
            ("x", "c.warc.gz", 3, "https://a.test/", "one page of text"),
            ("y", "a.warc.gz", 5, "https://y.test/", "another page entirely"),
        ],
        "id string, source string, offset long, url string, text string",
    ).withColumn("fetch_time", F.to_timestamp(F.lit("2024-01-01 00:00:00")))
    rows, _ = dedup_outcomes(docs, DedupConfig())
    found = sorted(
        (r["source"], r["outcome"], r["reason"], r["kept_id"], r["cluster_id"])
        for r in rows.collect()
    )
    assert found == [
        ("a.warc.gz", "kept", None, "x", "x"),  # the first copy by (source, offset)
        ("a.warc.gz", "kept", None, "y", "y"),
        ("b.warc.gz", "rejected", "duplicate_record", "x", "x"),
        ("c.warc.gz", "rejected", "duplicate_record", "x", "x"),
    ]
    docs = spark.createDataFrame(
        [(None, "https://a.test/", "same text"), ("z", "https://b.test/", "other text")],
        "id string, url string, text string",
    )
    with pytest.raises(InputError, match="a document without an id"):
        dedup_outcomes(docs, DedupConfig())


def test_a_stage_joining_by_id_refuses_a_repeated_one(spark):
    docs = spark.createDataFrame(
        [("x", "https://a.test/", "same text"), ("x", "https://b.test/", "other text")],
        "id string, url string, text string",
    )
    with pytest.raises(
        InputError, match=r"repeats the id 'x' \(url https://a.test/; url https://b"
    ):
        check_unique_ids(docs)


def test_documents_without_a_url_are_not_url_duplicates_of_each_other(spark):
    rows = [
        ("a", None, "a first text about one thing"),
        ("b", None, "a second text about another"),
        ("c", " ", "a third text about a third"),
        ("d", "https://x.test/page/", "the page as fetched first"),
        ("e", "https://x.test/page", "the page as fetched again"),
    ]
    docs = spark.createDataFrame(rows, "id string, url string, text string").withColumn(
        "fetch_time", F.lit(None).cast("timestamp")
    )
    decided = dedup_decisions(docs, DedupConfig()).collect()
    reasons = {r["id"]: r["reason"] for r in decided}
    assert reasons == {"a": None, "b": None, "c": None, "d": None, "e": "url_duplicate"}


def test_exact_duplicates_differ_in_no_number_and_texts_without_words_stand_alone(spark):
    rows = [
        ("a", "https://x.test/a", "Final score: Arsenal 3, Chelsea 1. Attendance 60,123."),
        ("b", "https://x.test/b", "Final score: Arsenal 0, Chelsea 2. Attendance 58,004."),
        ("c", "https://x.test/c", "final score -- ARSENAL 3 Chelsea 1; attendance 60,123"),
        ("d", "https://x.test/d", "🎉🎉🎉 🥳"),
        ("e", "https://x.test/e", "∑ ∫ √ ≈"),
        ("f", "https://x.test/f", None),
    ]
    docs = spark.createDataFrame(rows, "id string, url string, text string").withColumn(
        "fetch_time", F.lit(None).cast("timestamp")
    )
    decided = dedup_decisions(docs, DedupConfig(near=False)).collect()
    reasons = {r["id"]: (r["reason"], r["kept_id"]) for r in decided}
    # digits were folded to 0, so b was a's copy; every wordless text was one text
    assert reasons == {
        "a": (None, "a"),
        "b": (None, "b"),
        "c": ("exact_duplicate", "a"),
        "d": (None, "d"),
        "e": (None, "e"),
        "f": (None, "f"),
    }


def test_a_nan_quality_score_is_no_score_when_keeping_the_best(spark):
    """Spark sorts NaN above every number: a copy scored NaN (numpy's no score) beat 0.9."""
    text = "one text about the river and the bridge that was built across it last year"
    rows = [("q1", 0.9), ("q2", float("nan")), ("q3", None), ("q4", 0.1)]
    docs = spark.createDataFrame(
        [(i, f"https://x.test/{i}", text, score) for i, score in rows],
        "id string, url string, text string, quality_score double",
    ).withColumn("fetch_time", F.lit(None).cast("timestamp"))
    decided = dedup_decisions(docs, DedupConfig(keep="quality", near=False)).collect()
    assert {r["id"]: r["kept_id"] for r in decided} == dict.fromkeys(["q1", "q2", "q3", "q4"], "q1")


def test_a_quality_score_of_text_is_refused_for_keep_quality_and_unread_otherwise(spark):
    rows = [("a", "https://x.test/a", "one text here", "0.5"), ("b", None, "two", "n/a")]
    docs = spark.createDataFrame(rows, "id string, url string, text string, quality_score string")
    docs = docs.withColumn("fetch_time", F.lit(None).cast("timestamp"))
    with pytest.raises(InputError, match="quality_score column of string, not numbers"):
        dedup_decisions(docs, DedupConfig(keep="quality"))
    assert len(dedup_decisions(docs, DedupConfig(keep="longest")).collect()) == 2


def test_keys_identical_across_runs_and_partitionings(spark):
    rng = random.Random(3)
    words = [f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(400)]
    rows = [
        (f"doc{i}", f"https://example.test/{i}", " ".join(rng.choices(words, k=120)))
        for i in range(60)
    ]
    docs = spark.createDataFrame(rows, "id string, url string, text string")

    def keys(partitions: int, implementation: str) -> dict:
        config = DedupConfig()
        config.minhash.implementation = implementation
        out = docs.repartition(partitions).mapInArrow(key_batches(config), KEY_DDL)
        return {r["id"]: (r["text_hash"], r["bands"], r["signature"]) for r in out.collect()}

    for implementation in ("numpy", "datasketch"):
        first = keys(1, implementation)
        assert len(first) == 60 and all(v[1] and v[2] for v in first.values())
        assert keys(5, implementation) == first == keys(1, implementation)


@pytest.fixture(scope="module")
def dedup_run(spark, extract_run, tmp_path_factory):
    from jobs.dedup import run_dedup

    out, _ = extract_run
    config = load_curation_config()
    stats = run_dedup(spark, config, [f"{out}/extract"], out)
    return out, stats


@pytest.mark.slow
def test_dedup_stage_end_to_end(dedup_run, sample_crawl):
    out, stats = dedup_run
    kept = pads.dataset(f"{out}/dedup").to_table().to_pylist()
    rejected = pads.dataset(f"{out}/rejected/stage=dedup").to_table().to_pylist()
    extracted = pads.dataset(f"{out}/extract").to_table()

    # Stats add up, nothing lost, and agree with the files.
    assert stats["input"] == extracted.num_rows == len(kept) + len(rejected)
    assert stats["kept"] == len(kept) and stats["errors"] == 0
    assert stats["rejected"] == dict(Counter(r["reason"] for r in rejected))
    assert json.loads(Path(f"{out}/stats/dedup.json").read_text())["kept"] == len(kept)

    # Exactly one survivor per cluster, named by every removed member's kept_id.
    survivors = {r["cluster_id"]: r["id"] for r in kept}
    assert len(survivors) == len(kept)
    for row in rejected:
        assert row["reason"] in ("url_duplicate", "exact_duplicate", "near_duplicate")
        assert row["stage"] == "dedup" and survivors[row["cluster_id"]] == row["kept_id"]

    # Clusters are exactly the planted duplicate groups of the sample crawl.
    manifest = json.loads((sample_crawl / "expected.json").read_text())
    truth = {
        r["url"]: r for f in manifest["files"] for r in f["records"] if r["warc_type"] == "response"
    }
    planted = defaultdict(set)
    for row in kept + rejected:
        entry = truth[row["url"]]
        planted[entry.get("group") or row["id"]].add(row["cluster_id"])
    assert all(len(clusters) == 1 for clusters in planted.values())
    assert len(planted) == len(kept)
    reasons = Counter(r["reason"] for r in rejected)
    assert reasons["exact_duplicate"] >= 3 and reasons["near_duplicate"] >= 3


@pytest.mark.slow
def test_dedup_rerun_is_skipped_and_url_duplicates_keep_the_latest_fetch(
    spark, dedup_run, tmp_path
):
    from jobs.dedup import run_dedup

    out, _ = dedup_run
    config = load_curation_config()
    assert run_dedup(spark, config, [f"{out}/extract"], out) is None
    # Five extracted documents fetched again a day later, their host spelt in capitals.
    docs = spark.read.parquet(f"{out}/extract")
    later = docs.limit(5).select(
        *[c for c in docs.columns if c not in ("id", "url", "fetch_time")],
        F.concat(F.col("id"), F.lit("-refetch")).alias("id"),
        F.expr("replace(url, host, upper(host))").alias("url"),
        (F.col("fetch_time") + F.expr("INTERVAL 1 DAY")).alias("fetch_time"),
    )
    docs.unionByName(later).write.parquet(str(tmp_path / "docs"))
    stats = run_dedup(spark, config, [str(tmp_path / "docs")], str(tmp_path / "run"))
    rejected = spark.read.parquet(str(tmp_path / "run/rejected/stage=dedup"))
    url_dups = rejected.where("reason = 'url_duplicate'").collect()
    assert stats["rejected"]["url_duplicate"] == len(url_dups)
    # The earlier fetches are the ones removed.
    assert len(url_dups) == 5 and not any(r["id"].endswith("-refetch") for r in url_dups)


def test_reliable_checkpoints_give_the_same_components_and_leave_nothing_in_out(spark, tmp_path):
    """spark.checkpoints=reliable (cluster.yaml): rows cut from the lineage are files in
    OUT/_checkpoints/, which a lost executor does not take with it, removed after the stage."""
    from curation.spark.checkpoints import checkpoints

    edges = [*chain([5, 3, 9, 1, 7]), (20, 21), (21, 22)]
    rows = [(max(a, b), min(a, b)) for a, b in edges]
    df = spark.createDataFrame(rows, "node long, parent long")
    out = tmp_path / "run"
    (out / "_checkpoints" / "dedup-killed").mkdir(parents=True)  # a killed run's
    with checkpoints(spark, "reliable", str(out), "dedup") as checkpoint:
        assert not (out / "_checkpoints" / "dedup-killed").exists()
        found = {
            r["node"]: r["component"] for r in connected_components(df, 50, checkpoint).collect()
        }
        assert list((out / "_checkpoints").glob("dedup-*/*/rdd-*"))
    assert found == reference(edges)
    assert not (out / "_checkpoints").exists()


@pytest.mark.slow
def test_kept_documents_are_in_the_same_order_however_many_shuffle_partitions(
    spark, extract_run, tmp_path
):
    """Tokenize keeps its input's order: without mix, dedup's order was its joins' partitions,
    so the shards (and the manifest fingerprint a resume checks) followed a Spark setting."""
    from jobs.dedup import run_dedup

    out, _ = extract_run
    before = spark.conf.get("spark.sql.shuffle.partitions")
    orders = []
    try:
        for partitions in (3, 7):
            spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
            run_dedup(spark, load_curation_config(), [f"{out}/extract"], str(tmp_path / "p"), True)
            ids = pads.dataset(str(tmp_path / "p" / "dedup")).to_table(columns=["id"])
            orders.append(ids.column("id").to_pylist())
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    assert orders[0] == orders[1] == sorted(orders[0])
