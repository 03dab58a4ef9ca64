"""The filter stage: the chain on plain dicts, the Arrow glue, and the Spark job end to end."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.config import load_curation_config
from curation.filters.base import DocumentFilter, document_language
from curation.filters.chain import FilterChain, Verdict
from curation.inputs import InputError
from curation.spark.glue import _filter_batch, filter_parts, filter_schemas
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


@pytest.mark.parametrize("text", [None, "", " \n\u3000"])
def test_a_document_without_text_is_empty_before_any_step(text):
    """Not `lang` (the language step's reason) nor a step's error on None."""
    assert FilterChain([Tag(), Drop()]).apply({"text": text}) == Verdict("empty")
    assert FilterChain([]).apply({"text": text}).reason == "empty"


def test_arrow_glue_keeps_every_row_and_turns_exceptions_into_errors(spark):
    chain = FilterChain([Tag(), Drop()])
    batch = pa.RecordBatch.from_pylist(
        [
            {"id": "a", "url": "u", "host": "h", "text": "hello", "source": "s", "offset": 1},
            {"id": "b", "url": "u", "host": "h", "text": "no", "source": "s", "offset": 2},
            {"id": "c", "url": "u", "host": "h", "text": "boom", "source": "s", "offset": 3},
        ]
    )
    documents = spark.createDataFrame(
        [], "id string, url string, host string, text string, source string, offset bigint"
    )
    schemas = filter_schemas(documents.schema, chain, "filter")
    assert schemas["kept"].names == ["id", "url", "host", "text", "source", "offset", "tag"]
    table, counters = _filter_batch(chain, batch, schemas["kept"])
    out = table.to_pylist()
    assert [r["outcome"] for r in out] == ["kept", "rejected", "error"]
    assert [r["text"] for r in out[:2]] == ["HELLO", "NO"]
    assert out[1]["reason"] == "drop:short" and out[1]["tag"] == "n"
    assert out[2]["error"] == "filter of document c: ValueError: cannot judge"
    assert [r["offset"] for r in out] == [1, 2, 3]
    assert counters == {"tag:seen": 2}  # the two documents the chain judged


class Language(DocumentFilter):
    name = "language_seen"
    adds = {"seen": pa.string()}

    def filter(self, doc):
        doc["seen"] = document_language(doc)
        return None


def test_a_chain_without_the_language_step_reads_the_documents_lang():
    """Rerunning the heuristic steps on filter output must judge a German page as German."""
    rows = [{"id": "a", "url": "u", "host": "h", "text": "Guten Tag", "lang": "de"}]
    rows.append({"id": "b", "url": "u", "host": "h", "text": "Hello", "lang": None})
    batch = pa.RecordBatch.from_pylist(rows)
    kept = batch.schema.append(pa.field("seen", pa.string()))
    table, _ = _filter_batch(FilterChain([Language()]), batch, kept)
    assert [(r["lang"], r["seen"]) for r in table.to_pylist()] == [("de", "de"), (None, "en")]


def test_filter_task_writes_each_outcome_to_its_folder(spark, tmp_path):
    chain = FilterChain([Tag(), Drop()])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"id": i, "url": "u", "host": "h", "text": t, "source": "s", "offset": n, "time": now}
        for n, (i, t) in enumerate([("a", "hello"), ("b", "no"), ("c", "boom"), ("d", "fine")])
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet", row_group_size=2)
    documents = spark.read.parquet(str(tmp_path / "docs.parquet"))
    schemas = filter_schemas(documents.schema, chain, "filter")
    docs = str(tmp_path / "docs.parquet")
    tasks = [(0, [(docs, 0, 0, 2), (docs, 1, 0, 2)])]  # (file, row group, first row, end row)
    run = filter_parts(spark.sparkContext.broadcast(chain), schemas, "filter", str(tmp_path))
    [(attempt, counts, counters)] = list(run(iter(tasks)))
    assert [p.name for p in (tmp_path / "kept").glob("*.parquet")] == [
        f"part-00000-{attempt}.parquet"
    ]
    assert sorted(counts) == [("", "error", None, 1), ("", "kept", None, 2)] + [
        ("", "rejected", "drop:short", 1)
    ]
    assert counters == {"tag:seen": 3}
    read = {folder: pq.read_table(tmp_path / folder) for folder in ("kept", "rejected", "errors")}
    for folder, table in read.items():
        assert table.schema == schemas[folder], folder
    assert read["kept"].column("text").to_pylist() == ["HELLO", "FINE"]
    assert read["kept"].column("time").to_pylist() == [now, now]
    assert read["rejected"].select(["id", "stage", "reason"]).to_pylist() == [
        {"id": "b", "stage": "filter", "reason": "drop:short"}
    ]
    assert read["errors"].column("offset").to_pylist() == [2]


def test_a_file_without_a_document_column_is_named(spark, tmp_path):
    chain = FilterChain([Tag()])
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["a"], "url": ["u"], "host": ["h"], "text": ["t"]}), path)
    documents = spark.createDataFrame([], "id string, url string, host string, text string")
    schemas = filter_schemas(
        documents.schema.add("source", "string").add("offset", "long"), chain, "filter"
    )
    run = filter_parts(spark.sparkContext.broadcast(chain), schemas, "filter", str(tmp_path))
    with pytest.raises(InputError, match=r"docs\.parquet: no column \['source'\]"):
        list(run(iter([(0, [(str(path), 0, 0, 1)])])))


def test_a_file_without_another_stage_s_column_gets_nulls_for_it(spark, tmp_path):
    """`filter --input OUT/extract OUT/dedup` (or OUT/rejected): Spark's schema is one file's,
    and an extract part without `cluster_id` failed the task."""
    chain = FilterChain([Tag()])
    path = tmp_path / "docs.parquet"
    row = {"id": "a", "url": "u", "host": "h", "text": "t", "source": "s", "record_id": "r"}
    pq.write_table(pa.Table.from_pylist([row | {"fetch_time": datetime(2024, 1, 1)}]), path)
    ddl = "id string, url string, host string, text string, source string, record_id string"
    documents = spark.createDataFrame(
        [], f"{ddl}, fetch_time timestamp, offset long, cluster_id string"
    )
    schemas = filter_schemas(documents.schema, chain, "filter")
    run = filter_parts(spark.sparkContext.broadcast(chain), schemas, "filter", str(tmp_path))
    list(run(iter([(0, [(str(path), 0, 0, 1)])])))
    kept = pq.read_table(tmp_path / "kept")
    assert kept.column("cluster_id").to_pylist() == [None] and kept.column("id").to_pylist() == [
        "a"
    ]


def test_two_stages_outputs_keep_each_one_s_columns(spark, extract_run, tmp_path):
    """`filter --input OUT/dedup OUT/extract`: Spark's schema was one file's, so the dedup
    rows lost their cluster_id (or the extract rows failed the task), by the folders' order."""
    from jobs.filter import run_filter

    out, _ = extract_run
    table = pq.read_table(stage_path(out, "extract")).slice(0, 10)
    ids = pa.array([f"c-{i}" for i in range(10)])
    clustered = table.set_column(table.schema.get_field_index("id"), "id", ids)
    clustered = clustered.append_column("cluster_id", pa.array([f"k{i}" for i in range(10)]))
    (tmp_path / "aa").mkdir()
    pq.write_table(clustered, tmp_path / "aa" / "part-0.parquet")
    config = load_curation_config(overrides=["filter.steps=[pii]"])
    stats = run_filter(
        spark, config, [str(tmp_path / "aa"), stage_path(out, "extract")], str(tmp_path / "o")
    )
    kept = pq.read_table(tmp_path / "o" / "filter").to_pylist()
    assert stats["input"] == 10 + pq.read_table(stage_path(out, "extract")).num_rows
    assert stats["kept"] == len(kept)
    clusters = {r["id"]: r["cluster_id"] for r in kept}
    assert all(clusters[k] == f"k{k[2:]}" for k in clusters if k.startswith("c-"))
    assert sum(k.startswith("c-") for k in clusters) >= 8
    assert {v for k, v in clusters.items() if not k.startswith("c-")} == {None}


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
