"""The filter stage: the chain on plain dicts, the Arrow glue, and the Spark job end to end."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from curation.config import load_curation_config
from curation.filters.base import DocumentFilter
from curation.filters.chain import FilterChain
from curation.spark.glue import _filter_batch, filter_output_schema
from curation.spark.stage import stage_path


class Tag(DocumentFilter):
    name = "tag"
    adds = {"tag": pa.string()}

    def filter(self, doc):
        doc["tag"] = doc["text"][:1]
        self.count("tag:seen")
        return None


class Drop(DocumentFilter):
    name = "drop"

    def filter(self, doc):
        if doc["text"] == "boom":
            raise ValueError("cannot judge")
        doc["text"] = doc["text"].upper()
        return self.reason("short") if len(doc["text"]) < 3 else None


def test_first_rejecting_step_wins_and_counters_add_up():
    chain = FilterChain([Tag(), Drop()])
    doc = {"text": "ok"}
    verdict = chain.apply(doc)
    assert (verdict.reason, doc) == ("drop:short", {"text": "OK", "tag": "o"})
    assert verdict.counters == {"tag:seen": 1}
    assert chain.adds == {"tag": pa.string()}


def test_arrow_glue_keeps_every_row_and_turns_exceptions_into_errors(spark):
    chain = FilterChain([Tag(), Drop()])
    batch = pa.RecordBatch.from_pylist(
        [
            {"id": "a", "url": "u", "host": "h", "text": "hello", "offset": 1},
            {"id": "b", "url": "u", "host": "h", "text": "no", "offset": 2},
            {"id": "c", "url": "u", "host": "h", "text": "boom", "offset": 3},
        ]
    )
    documents = spark.createDataFrame(
        [], "id string, url string, host string, text string, offset bigint"
    )
    schema = filter_output_schema(documents.schema, chain)
    out = _filter_batch(chain, batch, schema).to_pylist()
    assert [r["outcome"] for r in out] == ["kept", "rejected", "error"]
    assert [r["text"] for r in out[:2]] == ["HELLO", "NO"]
    assert out[1]["reason"] == "drop:short" and out[1]["tag"] == "n"
    assert out[2]["error"] == "filter of document c: ValueError: cannot judge"
    assert [r["offset"] for r in out] == [1, 2, 3]
    assert out[0]["counters"] == [("tag:seen", 1)]


@pytest.fixture(scope="module")
def filter_run(spark, extract_run):
    from jobs.filter import run_filter

    out, _ = extract_run
    config = load_curation_config()
    stats = run_filter(spark, config, [stage_path(out, "extract")], out)
    return out, stats


def expected_responses(sample_crawl) -> dict[str, dict]:
    expected = json.loads((Path(sample_crawl) / "expected.json").read_text())
    return {
        r["url"]: r for f in expected["files"] for r in f["records"] if r["warc_type"] == "response"
    }


def test_stats_add_up_and_outputs_match_them(spark, filter_run, extract_run):
    out, stats = filter_run
    assert stats["input"] == extract_run[1]["kept"]
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    kept = spark.read.parquet(f"{out}/filter")
    rejected = spark.read.parquet(f"{out}/rejected").where("stage = 'filter'")
    assert kept.count() == stats["kept"]
    assert rejected.count() == sum(stats["rejected"].values())
    assert {"lang", "lang_score", "pii_count"} <= set(kept.columns)
    assert stats["counters"]["pii:EMAIL"] > 0
    assert json.loads(Path(out, "stats", "filter.json").read_text()) == stats
    assert (
        json.loads(Path(out, "run.json").read_text())["stages"]["filter"]["kept"] == stats["kept"]
    )


def test_decisions_match_the_crawl_ground_truth(spark, filter_run, sample_crawl):
    out, _ = filter_run
    truth = expected_responses(sample_crawl)
    rejected = {r["url"]: r for r in spark.read.parquet(f"{out}/rejected/stage=filter").collect()}
    kept = {r["url"]: r for r in spark.read.parquet(f"{out}/filter").collect()}
    for url, row in (*kept.items(), *rejected.items()):
        kind = truth[url]["kind"]
        reason = rejected[url]["reason"] if url in rejected else None
        if kind.startswith("blocklisted:"):
            assert reason == "blocklist:" + kind.split(":")[1], url
        elif kind in ("foreign:ja", "foreign:zh"):
            assert reason == "lang" and row["lang"] == kind.split(":")[1], url
        elif kind.startswith("foreign:"):
            assert row["lang"] == kind.split(":")[1], url
        elif kind in ("article", "duplicate", "near_duplicate"):
            assert reason is None and row["lang"] == "en", url
        elif kind == "pii" and reason is None:
            assert row["pii_count"] >= len(truth[url]["pii"]) > 0, url
            assert not [p for p in truth[url]["pii"] if p["value"] in row["text"]], url


def test_rerun_is_skipped_and_force_gives_the_same_documents(spark, filter_run, extract_run):
    from jobs.filter import run_filter

    out, stats = filter_run
    config = load_curation_config()
    inputs = [stage_path(out, "extract")]
    assert run_filter(spark, config, inputs, out) is None
    before = sorted(tuple(r) for r in spark.read.parquet(f"{out}/filter").collect())
    again = run_filter(spark, config, inputs, out, force=True)
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in stats.items() if k != "seconds"
    }
    assert sorted(tuple(r) for r in spark.read.parquet(f"{out}/filter").collect()) == before
