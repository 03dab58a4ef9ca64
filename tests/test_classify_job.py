"""The classify and mix stages end to end on the sample crawl's extracted documents."""

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from curation.config import load_curation_config
from curation.domains import DomainRules
from curation.inputs import InputError
from curation.mix import MixError
from curation.spark.stage import stage_path
from jobs.classify import JOB as CLASSIFY
from jobs.classify import run_classify
from jobs.mix import run_mix


def read(path: str) -> list[dict]:
    return ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pylist()


@pytest.fixture(scope="module")
def classify_run(spark, extract_run, quality_model):
    out, _ = extract_run
    config = load_curation_config(overrides=[f"classify.quality.model={quality_model}"])
    stats = run_classify(spark, config, [stage_path(out, "extract")], out)
    return out, stats, config


def kinds(sample_crawl) -> dict[str, str]:
    expected = json.loads((Path(sample_crawl) / "expected.json").read_text())
    return {r["url"]: r["kind"] for f in expected["files"] for r in f["records"] if "url" in r}


def test_classify_scores_every_document_and_rejected_rows_carry_the_score(
    classify_run, sample_crawl
):
    out, stats, _ = classify_run
    extracted = json.loads(Path(f"{out}/stats/extract.json").read_text())["kept"]
    assert stats["input"] == extracted
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    assert set(stats["rejected"]) <= {"quality:threshold"}
    kept = read(stage_path(out, "classify"))
    rejected = [r for r in read(f"{out}/rejected") if r["stage"] == "classify"]
    assert len(kept) == stats["kept"] and len(rejected) == sum(stats["rejected"].values())
    assert all(r["quality_score"] >= 0.25 for r in kept)
    assert all(r["quality_score"] < 0.25 and r["reason"] == "quality:threshold" for r in rejected)
    labels = set(load_curation_config().classify.domains.labels)
    assert {r["domain"] for r in kept + rejected} <= labels
    kind = kinds(sample_crawl)
    scores: dict[str, list[float]] = {}
    for r in kept + rejected:
        scores.setdefault(kind[r["url"]], []).append(r["quality_score"])
    mean = {k: sum(v) / len(v) for k, v in scores.items()}
    assert mean["spam"] < 0.25 < mean["article"]
    details = json.loads(Path(f"{out}/classify/_classify.json").read_text())
    assert details["keep"] == "threshold" and details["threshold"] == 0.25
    domains = details["domains"]
    assert domains["classifier"] == "trained"
    assert {"encyclopedic", "forum", "code", "science", "books", "commerce"} <= set(
        domains["labelled"]
    )
    cv = domains["cross_validation"]
    assert cv["documents"] == sum(domains["labelled"].values())
    assert sum(n for row in cv["confusion"].values() for n in row.values()) == cv["documents"]


def test_the_classifier_labels_genre_pages_no_rule_knows(classify_run, sample_crawl):
    """Pages of genre sites the rules do not know get labels from the classifier, and the
    corpus reaches at least three domains."""
    out, _, _ = classify_run
    rows = read(stage_path(out, "classify")) + [
        r for r in read(f"{out}/rejected") if r["stage"] == "classify"
    ]
    expected = json.loads((Path(sample_crawl) / "expected.json").read_text())
    genre = {r["url"]: r["genre"] for f in expected["files"] for r in f["records"] if "genre" in r}
    rules = DomainRules(load_curation_config().classify.domains.rules())
    unruled = [r for r in rows if genre.get(r["url"]) and rules.label(r["url"], r["host"]) is None]
    assert unruled and sum(r["domain"] != "other" for r in unruled) >= len(unruled) / 2
    assert len({r["domain"] for r in rows}) >= 3


def test_top_fraction_keeps_about_that_share(spark, extract_run, quality_model, tmp_path):
    out, _ = extract_run
    overrides = [f"classify.quality.model={quality_model}", "classify.quality.keep=top_fraction"]
    config = load_curation_config(overrides=[*overrides, "classify.quality.top_fraction=0.3"])
    stats = run_classify(spark, config, [stage_path(out, "extract")], str(tmp_path))
    assert abs(stats["kept"] / stats["input"] - 0.3) < 0.05
    details = json.loads((tmp_path / "classify" / "_classify.json").read_text())
    assert 0.0 < details["threshold"] < 1.0
    # the decision is recomputed from the file: a document at the cut needs the tie_break too
    from curation.quality import tie_break

    cut = (details["threshold"], details["tie_break"])
    scored = [
        (row["quality_score"], tie_break(0, row["id"]))
        for folder in (tmp_path / "classify", tmp_path / "rejected" / "stage=classify")
        for row in pq.read_table(folder, columns=["id", "quality_score"]).to_pylist()
    ]
    assert sum(pair >= cut for pair in scored) == stats["kept"]


def test_mix_writes_every_document_once_with_a_bucket_and_the_weights(spark, classify_run):
    out, classified, config = classify_run
    stats = run_mix(spark, config, [stage_path(out, "classify")], out)
    assert stats["input"] == stats["kept"] == classified["kept"]
    docs = read(stage_path(out, "mix"))
    assert sorted(r["id"] for r in docs) == sorted(r["id"] for r in read(f"{out}/classify"))
    # in id order across the part files, read in name order: the order tokenize keeps
    parts = sorted(Path(stage_path(out, "mix")).glob("part-*.parquet"))
    ids = [
        i for part in parts for i in pq.read_table(part, columns=["id"]).column("id").to_pylist()
    ]
    assert ids == sorted(ids)
    mixture = json.loads(Path(f"{out}/mix/_mixture.json").read_text())
    buckets = {r["bucket"] for r in docs}
    assert set(mixture["buckets"]) == buckets
    assert sum(b["documents"] for b in mixture["buckets"].values()) == len(docs)
    pretrain = mixture["mixtures"]["pretrain"]
    assert set(pretrain) <= buckets and sum(pretrain.values()) == pytest.approx(1.0, abs=1e-6)
    for domain, row in mixture["report"]["domains"].items():
        assert row["epochs"] <= config.mix.max_epochs + 1e-9, domain
    # the anneal buckets are recomputed from the file: (score, tie_break) at or past the cut
    from curation.quality import tie_break

    anneal = config.mix.anneal
    cut = (mixture["anneal"]["threshold"], mixture["anneal"]["tie_break"])
    assert mixture["anneal"]["selected_by"] == "quality_score"
    candidates = [r for r in docs if not anneal.domains or r["domain"] in anneal.domains]
    chosen = [r for r in candidates if (r["quality_score"], tie_break(anneal.seed, r["id"])) >= cut]
    assert chosen and sorted(r["id"] for r in chosen) == sorted(
        r["id"] for r in docs if r["bucket"].startswith("anneal.")
    )


def test_mix_labels_by_url_rules_when_classify_was_skipped(spark, extract_run, tmp_path):
    out, _ = extract_run
    config = load_curation_config()
    assert "no quality model" in CLASSIFY.skip(config)
    stats = run_mix(spark, config, [stage_path(out, "extract")], str(tmp_path))
    docs = read(str(tmp_path / "mix"))
    assert len(docs) == stats["kept"] and all(r["bucket"] and r["domain"] for r in docs)
    assert "quality_score" not in docs[0]


def test_mix_of_classified_and_unclassified_inputs_keeps_every_column(
    spark, classify_run, tmp_path
):
    """Spark read the columns of whichever input's file came first: by the folders' names, the
    classified documents lost their domain and score, or the others' null domain crashed."""
    out, _, config = classify_run
    table = pq.read_table(stage_path(out, "extract"))
    extracted = table.slice(0, 20).to_pylist()
    for row in extracted:
        row["id"] = f"other-{row['id']}"
    classified = {r["id"]: r for r in read(stage_path(out, "classify"))}
    for name in ("aa", "zz"):  # before and after `classify` in path order
        folder = tmp_path / name
        folder.mkdir()
        pq.write_table(
            table.from_pylist(extracted, schema=table.schema),
            folder / "part-0.parquet",
        )
        for inputs in (
            [stage_path(out, "classify"), str(folder)],
            [str(folder), stage_path(out, "classify")],
        ):
            stats = run_mix(spark, config, inputs, str(tmp_path / f"mixed-{name}-{inputs[0][-2:]}"))
            docs = read(str(tmp_path / f"mixed-{name}-{inputs[0][-2:]}" / "mix"))
            assert stats["kept"] == len(docs) == len(classified) + 20
            for doc in docs:
                if doc["id"] in classified:
                    assert doc["domain"] == classified[doc["id"]]["domain"]
                    assert doc["quality_score"] == classified[doc["id"]]["quality_score"]
                else:
                    assert doc["domain"] and doc["quality_score"] is None


def test_mix_refuses_inputs_that_hold_the_same_documents(spark, classify_run, tmp_path):
    out, _, config = classify_run
    table = pq.read_table(stage_path(out, "extract")).slice(0, 5)
    (tmp_path / "other").mkdir()
    retyped = table.set_column(
        table.schema.get_field_index("http_status"),
        "http_status",
        table.column("http_status").cast("int64"),
    )
    pq.write_table(retyped, tmp_path / "other" / "part-0.parquet")
    with pytest.raises(InputError, match="have a column of different types: .*http_status"):
        run_mix(spark, config, [stage_path(out, "extract"), str(tmp_path / "other")], str(tmp_path))
    with pytest.raises(MixError, match="the same documents more than once"):
        run_mix(
            spark,
            config,
            [stage_path(out, "classify"), stage_path(out, "classify") + "/"],
            str(tmp_path),
        )
    with pytest.raises(MixError, match="the same documents more than once"):  # one glob, two
        run_mix(spark, config, [f"{out}/{{classify,extract}}"], str(tmp_path))


def test_a_bucket_whose_texts_are_all_null_holds_no_tokens(spark, classify_run, tmp_path):
    """A null text counts as empty (README); a bucket of only such rows summed to null."""
    out, _, config = classify_run
    rows = read(stage_path(out, "classify"))
    emptied = rows[0]["domain"]
    for row in rows:
        if row["domain"] == emptied:
            row["text"] = None
    (tmp_path / "docs").mkdir()
    schema = pq.read_schema(next(Path(stage_path(out, "classify")).glob("part-*.parquet")))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "docs" / "part-0.parquet")
    stats = run_mix(spark, config, [str(tmp_path / "docs")], str(tmp_path / "run"))
    assert stats["kept"] == len(rows)
    mixture = json.loads((tmp_path / "run" / "mix" / "_mixture.json").read_text())
    mine = [b for name, b in mixture["buckets"].items() if name in (emptied, f"anneal.{emptied}")]
    assert mine and all(bucket["tokens"] == 0 for bucket in mine)


class FlakyScorer:
    """Scores by text length; fails on the text "boom" (a document the model cannot take)."""

    def score(self, urls, hosts, texts):
        if "boom" in texts:
            raise ValueError("cannot score")
        return [min(1.0, len(t) / 10) for t in texts], ["other"] * len(texts)


def test_glue_isolates_a_failing_document_and_decides_the_rest():
    import pyarrow as pa

    from curation.quality import QualityDecision
    from curation.spark.classify import _score_batch, decide_batches

    batch = pa.RecordBatch.from_pylist(
        [
            {"id": i, "url": "u", "host": "h", "text": t}
            for i, t in (("a", "long enough text"), ("b", "boom"), ("c", "ab"))
        ]
    )
    scored = _score_batch(FlakyScorer(), batch)
    assert scored["quality_score"] == [1.0, None, 0.2]
    assert scored["error"][1] == "classify of document b: ValueError: cannot score"
    columns = {**{n: batch.column(n) for n in batch.schema.names}, **scored}
    rows = pa.RecordBatch.from_pydict(columns)
    decided = next(decide_batches(QualityDecision("threshold", 0.25))(iter([rows])))
    assert decided.column("outcome").to_pylist() == ["kept", "error", "rejected"]
    assert decided.column("reason").to_pylist() == [None, None, "quality:threshold"]


def test_curate_without_a_quality_model_skips_classify_and_mixes_the_stage_before(
    extract_run, tmp_path
):
    import os
    import subprocess
    import sys

    out, _ = extract_run
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "refinery", "curate", "--input", f"{out}/extract"]
    argv += ["--output", str(run), "pipeline.stages=[classify, mix]", "spark.master=local[2]"]
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": repo}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=repo, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "classify: skipped, no quality model configured" in done.stdout
    assert f"documents: {run}/mix/" in done.stdout
    assert not (run / "classify").exists() and (run / "mix" / "_SUCCESS").exists()
    mixed = json.loads((run / "stats" / "mix.json").read_text())
    assert mixed["kept"] == json.loads(Path(f"{out}/stats/extract.json").read_text())["kept"]


def test_a_skipped_stage_an_earlier_run_ran_is_refused_then_removed_with_force(spark, tmp_path):
    """Classify with its quality model forgotten, or left out of pipeline.stages: mix and
    tokenize were built on its output, and its rejections would count documents they keep."""
    from curation.spark.fs import HadoopFS
    from curation.spark.stage import remove_stage
    from jobs.common import OutputError
    from jobs.pipeline import check_no_skipped_leftovers, stage_plan

    out = tmp_path / "run"
    for folder in ("classify", "rejected/stage=classify", "rejected/stage=dedup", "stats"):
        (out / folder).mkdir(parents=True)
    (out / "classify" / "_SUCCESS").touch()
    (out / "stats" / "classify.json").write_text("{}")
    finished = {"finished": "2026-12-05T10:00:00+00:00"}
    (out / "run.json").write_text(json.dumps({"stages": {"dedup": finished, "classify": finished}}))
    fs = HadoopFS(spark)
    left_out = load_curation_config(None, ["pipeline.stages=[dedup, mix]"])
    for config, reason in (
        (load_curation_config(), r"no quality model configured \(.*\)"),
        (left_out, "classify: skipped, left out of pipeline.stages"),
    ):
        with pytest.raises(OutputError, match=rf"{reason}, but .*holds an earlier"):
            check_no_skipped_leftovers(fs, str(out), stage_plan(config), force=False)
        check_no_skipped_leftovers(fs, str(out), stage_plan(config), force=True)
    remove_stage(fs, str(out), "classify")
    assert sorted(p.name for p in (out / "rejected").iterdir()) == ["stage=dedup"]
    assert not (out / "classify").exists() and not (out / "stats" / "classify.json").exists()
    assert json.loads((out / "run.json").read_text()) == {"stages": {"dedup": finished}}
    check_no_skipped_leftovers(fs, str(out), stage_plan(load_curation_config()), force=False)


def test_the_stage_plan_runs_from_the_first_stage_listed_to_the_last():
    from jobs.pipeline import stage_plan

    config = load_curation_config(None, ["pipeline.stages=[filter, mix]"])
    plan = [(job.name, reason) for job, reason in stage_plan(config)]
    assert plan == [
        ("filter", None),
        ("dedup", "dedup: skipped, left out of pipeline.stages"),
        ("classify", "classify: skipped, left out of pipeline.stages"),
        ("mix", None),
    ]


def test_the_domain_sample_keeps_each_labels_lowest_hashes_before_the_shuffle(spark):
    """Past Spark's default WindowGroupLimit threshold (1000 rows) every document of a label
    went to one task to be sorted; the stage raises it to sample_per_label."""
    from jobs.classify import domain_sample

    config = load_curation_config(None, ["classify.domains.sample_per_label=1500"]).classify
    rows = [
        (f"d{i}", f"https://{'en.wikipedia.org' if i % 2 else 'bbc.com'}/p{i}", "text")
        for i in range(4000)
    ]
    docs = spark.createDataFrame(rows, "id string, url string, text string").repartition(4)
    docs = docs.withColumn("host", F.regexp_extract("url", "//([^/]+)/", 1))
    sample = domain_sample(docs, DomainRules(config.domains.rules()), config.domains)
    assert "WindowGroupLimit" in sample._jdf.queryExecution().executedPlan().toString()
    chosen = sample.groupBy("label").count().collect()
    assert sorted((r["label"], r["count"]) for r in chosen) == [
        ("encyclopedic", 1500),
        ("news", 1500),
    ]


def test_the_top_fraction_score_is_the_same_however_the_scores_are_partitioned(spark, monkeypatch):
    from curation.quality import tie_break, top_fraction_threshold
    from curation.spark import classify as glue

    rng = random.Random(0)
    rows = [(f"d{i}", rng.random()) for i in range(2000)] + [("none", None)]
    docs = spark.createDataFrame(rows, "id string, quality_score double")
    exact = top_fraction_threshold([(s, tie_break(0, i)) for i, s in rows if s is not None], 0.1)
    for parts in (1, 7):
        assert glue.top_fraction_score(docs.repartition(parts), "quality_score", 0.1, 0) == exact
    monkeypatch.setattr(glue, "QUANTILE_SAMPLE", 500)  # a seeded sample of the ids
    sampled = {
        glue.top_fraction_score(docs.repartition(parts), "quality_score", 0.1, 0)
        for parts in (1, 7)
    }
    assert len(sampled) == 1 and abs(sampled.pop()[0] - exact[0]) < 0.05
    assert glue.top_fraction_score(docs.where("id = 'none'"), "quality_score", 0.1, 0) is None


def test_the_spark_cut_keeps_the_fraction_of_tied_scores_as_python_does(spark):
    from curation.quality import tie_break
    from curation.spark import classify as glue

    rows = [(f"doc-{i}", 1.0 if i % 4 else 0.5) for i in range(400)]  # 300 tie at 1.0
    docs = spark.createDataFrame(rows, "id string, quality_score double")
    ties = docs.select("id", glue.tie_break_column(5).alias("t")).collect()
    assert all(row["t"] == tie_break(5, row["id"]) for row in ties)  # one number, two engines
    cut = glue.top_fraction_score(docs, "quality_score", 0.1, 5)
    assert cut[0] == 1.0 and docs.where(glue.kept_by_cut("quality_score", cut, 5)).count() == 40
    # a NaN score (numpy's none) is no score: Spark orders it above every number
    scored = spark.createDataFrame(
        [*rows, ("nan", float("nan"))], "id string, quality_score double"
    )
    assert glue.top_fraction_score(scored, "quality_score", 0.1, 5) == cut
    assert scored.where(glue.kept_by_cut("quality_score", cut, 5)).count() == 40
    decimal = docs.withColumn("quality_score", F.col("quality_score").cast("decimal(5,2)"))
    assert glue.top_fraction_score(decimal, "quality_score", 0.1, 5) == cut  # 1.0, not Decimal
    assert type(glue.top_fraction_score(decimal, "quality_score", 0.1, 5)[0]) is float


def test_the_anneal_cut_needs_numeric_scores_and_samples_where_there_are_none(spark, capsys):
    from curation.mix import MixConfig
    from jobs.mix import anneal_members

    config = MixConfig()
    domain = config.anneal.domains[0]
    rows = [(f"d{i}", domain, None) for i in range(200)]
    docs = spark.createDataFrame(rows, "id string, domain string, quality_score double")
    member, cut, selected_by = anneal_members(docs, config)
    assert cut is None and 0 < docs.where(member).count() < 200  # a seeded sample
    assert selected_by == "seeded_random"  # in _mixture.json, as the stderr line says
    others = spark.createDataFrame([("n", "news")], "id string, domain string")
    member, cut, selected_by = anneal_members(others, config)  # nothing to anneal on
    assert (others.where(member).count(), cut, selected_by) == (0, None, None)
    assert (
        "have no quality_score: the anneal buckets are a seeded random" in capsys.readouterr().err
    )
    texts = spark.createDataFrame(
        [("a", domain, "0.5")], "id string, domain string, quality_score string"
    )
    with pytest.raises(InputError, match="quality_score column of string"):
        anneal_members(texts, config)


def test_kept_documents_are_written_in_id_order(classify_run):
    """Spark reads a stage's input splits largest first, cut by core count: written in that
    order, the shards of a pipeline whose tokenize reads classify would follow the cluster."""
    out, _, _ = classify_run
    ids = ds.dataset(f"{out}/classify", format="parquet").to_table(columns=["id"])
    assert ids.column("id").to_pylist() == sorted(ids.column("id").to_pylist())
