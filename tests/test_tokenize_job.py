"""The tokenize stage in local Spark: counts add up, shards decode to the input, damage is
refused, reruns are deterministic, and the trainer trains on the result."""

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curation.config import load_curation_config
from curation.inputs import resolve_inputs
from curation.spark.row_groups import DISCOVERY_THRESHOLD, row_group_slices
from curation.spark.tokens import sample_texts
from curation.tokenize import TokenizeError, document_hash, is_validation, reject_reason
from jobs.common import ran_since, read_record
from jobs.mix import mixture_plan
from jobs.tokenize import planned_mixtures, run_tokenize, trained_tokenizer
from refinery.cli import main as refinery
from refinery.manifest import read_manifest
from refinery.shards import HEADER_BYTES, open_shard
from refinery.tokenizer import EOS, load_tokenizer

from conftest import REPO

OVERRIDES = [
    "tokenize.vocab_size=800",
    "tokenize.validation_share=0.2",
    "tokenize.max_document_tokens=3000",
    "tokenize.shard_tokens=8000",
    "tokenize.partitions=3",
]
TINY = Path(__file__).resolve().parent.parent / "conf" / "train" / "tiny.yaml"
LONG_TEXT = "A very long page about nothing in particular, repeated. " * 1500


@pytest.fixture(scope="module")
def documents(spark, extract_run, tmp_path_factory):
    """The extract stage's documents plus an empty, a blank and a very long document."""
    out, _ = extract_run
    kept = spark.read.parquet(str(Path(out) / "extract"))
    extra = [row.asDict() for row in kept.limit(3).collect()]
    for row, text in zip(extra, ["", "   \n ", LONG_TEXT], strict=True):
        row.update(id=f"extra-{len(text)}", text=text)
    folder = str(tmp_path_factory.mktemp("docs") / "extra")
    spark.createDataFrame(extra, kept.schema).coalesce(1).write.parquet(folder)
    return [str(Path(out) / "extract"), folder], kept.count() + len(extra)


def tokenize(spark, inputs, out, *extra, force=False):
    config = load_curation_config(overrides=[*OVERRIDES, *extra])
    return run_tokenize(spark, config, inputs, str(out), force)


@pytest.fixture(scope="module")
def tokenized(spark, documents, tmp_path_factory):
    inputs, _ = documents
    out = tmp_path_factory.mktemp("run") / "out"
    return out, tokenize(spark, inputs, out)


def all_texts(inputs):
    return [t for path in inputs for t in pq.read_table(path, columns=["text"])["text"].to_pylist()]


def test_stats_and_manifest_add_up_to_the_input(tokenized, documents):
    out, stats = tokenized
    _, total = documents
    assert stats["input"] == total
    assert stats["rejected"] == {"empty": 2}
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    assert json.loads((out / "stats" / "tokenize.json").read_text()) == stats
    rejected = pq.read_table(out / "rejected" / "stage=tokenize").to_pylist()
    assert sorted(r["reason"] for r in rejected) == ["empty", "empty"]
    assert {r["stage"] for r in rejected} == {"tokenize"}
    manifest = read_manifest(out / "tokens")
    splits = [*manifest.buckets.values(), manifest.validation]
    assert list(manifest.buckets) == ["web"] and manifest.validation.documents > 0
    assert sum(s.tokens for s in splits) == stats["tokens"]
    assert stats["split_documents"] >= 1  # LONG_TEXT at least; exact count checked below
    assert manifest.mixture("pretrain") == {"web": 1.0} == manifest.mixture("anneal")
    run = json.loads((out / "run.json").read_text())
    assert run["stages"]["tokenize"]["kept"] == stats["kept"]
    assert not (out / "_tmp").exists()


def test_spark_reads_the_rejected_rows_with_the_document_columns(spark, tokenized, documents):
    out, _ = tokenized
    inputs, _ = documents
    rejected = spark.read.parquet(str(out / "rejected" / "stage=tokenize"))
    docs = spark.read.parquet(*inputs).schema
    assert [(f.name, f.dataType) for f in rejected.schema.fields] == [
        *((f.name, f.dataType) for f in docs.fields),
        *((name, T.StringType()) for name in ("stage", "reason")),
    ]
    assert rejected.count() == 2


def test_footers_read_in_a_job_cut_the_same_slices(spark, documents):
    inputs, _ = documents
    files = spark.read.parquet(*inputs).inputFiles()
    on_driver = row_group_slices(spark, files, 3)
    spark.conf.set(DISCOVERY_THRESHOLD, "0")
    try:
        assert row_group_slices(spark, files, 3) == on_driver
    finally:
        spark.conf.unset(DISCOVERY_THRESHOLD)
    assert [g[:2] for run in on_driver for g in run] == [
        (f, i)
        for f in sorted(files)
        for i in range(pq.ParquetFile(urlparse(f).path).num_row_groups)
    ]


def test_shards_decode_back_to_exactly_the_kept_documents(tokenized, documents):
    out, stats = tokenized
    manifest = read_manifest(out / "tokens")
    tokenizer = load_tokenizer(manifest.tokenizer_path)
    eos = tokenizer.token_to_id(EOS)
    assert manifest.tokenizer.eos_id == eos
    decoded, text_bytes = [], 0
    for split in [*manifest.buckets.values(), manifest.validation]:
        shards = [open_shard(e.path, e.tokens, e.documents, manifest.dtype) for e in split.shards]
        assert all(s.num_tokens <= 8000 for s in shards)
        stream = np.concatenate([s.tokens for s in shards])
        assert stream[-1] == eos
        for doc in np.split(stream, np.flatnonzero(stream == eos) + 1)[:-1]:
            decoded.append(tokenizer.decode(doc[:-1].tolist(), skip_special_tokens=False))
        text_bytes += split.bytes
    inputs, _ = documents
    kept = [t for t in all_texts(inputs) if t.strip()]
    assert Counter(decoded) == Counter(kept)
    assert text_bytes == sum(len(t.encode()) for t in kept)
    # a document over 3000 tokens (EOS included) became 3000-token pieces, one index entry each
    lengths = [len(ids) + 1 for ids in (e.ids for e in tokenizer.encode_batch(kept))]
    pieces = sum(s.documents for s in [*manifest.buckets.values(), manifest.validation])
    assert pieces == sum(math.ceil(n / 3000) for n in lengths)
    assert stats["split_documents"] == sum(n > 3000 for n in lengths)
    assert stats["tokens"] == sum(lengths)
    # validation documents are counted as documents (one EOS each), not as the pieces the
    # manifest counts
    shards = manifest.validation.shards
    held = [open_shard(e.path, e.tokens, e.documents, manifest.dtype) for e in shards]
    ends = sum(int((s.tokens == eos).sum()) for s in held)
    assert stats["validation_documents"] == ends > 0


def test_rerun_skips_and_force_reproduces_identical_shards(spark, tokenized, documents, tmp_path):
    out, _ = tokenized
    inputs, _ = documents
    assert tokenize(spark, inputs, out) is None  # _SUCCESS: skipped
    again = tmp_path / "again"
    how = ["spark.conf={spark.executor.memory: 3g}", "input.files_per_task=4"]  # not the data
    tokenize(spark, inputs, again, *how)
    first, second = out / "tokens", again / "tokens"
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_same_documents_in_another_layout_give_identical_shards(
    spark, tokenized, documents, tmp_path
):
    """Shards follow the documents' order alone: one file of 7-row row groups holding the
    input's rows in its file order tokenizes to the same bytes (Spark's splits of a stage's
    output change with the cluster; tasks were cut by row groups)."""
    out, _ = tokenized
    inputs, _ = documents
    files = sorted(spark.read.parquet(*inputs).inputFiles())
    rows = pa.concat_tables(
        [pq.read_table(urlparse(f).path) for f in files], promote_options="permissive"
    )
    (tmp_path / "one").mkdir()
    pq.write_table(rows, tmp_path / "one" / "part-0.parquet", row_group_size=7)
    tokenize(spark, [str(tmp_path / "one")], tmp_path / "again")
    first, second = out / "tokens", tmp_path / "again" / "tokens"
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_given_tokenizer_is_used_as_is(spark, tokenized, documents, tmp_path):
    out, _ = tokenized
    inputs, _ = documents
    given = out / "tokens" / "tokenizer.json"
    tokenize(spark, inputs[:1], tmp_path, f"tokenize.tokenizer={given}", "tokenize.seed=5")
    manifest = read_manifest(tmp_path / "tokens")
    assert manifest.tokenizer.sha256 == read_manifest(out / "tokens").tokenizer.sha256


def test_a_run_folder_named_with_hash_percent_and_space_holds_every_stage(
    spark, tokenized, sample_crawl, tmp_path
):
    """Tasks write through pyarrow, which reads URIs (`#` starts a fragment, `%20` is a space),
    and the driver commits through Hadoop, which does not: both must name the same folder."""
    from jobs.dedup import run_dedup
    from jobs.extract import run_extract
    from jobs.filter import run_filter

    out = tmp_path / "run #1 %20é"
    config = load_curation_config(
        overrides=[*OVERRIDES, f"tokenize.tokenizer={tokenized[0] / 'tokens' / 'tokenizer.json'}"]
    )
    inputs = resolve_inputs([str(sample_crawl)], "")[:1]
    counts = {}
    for stage, run in (("extract", run_extract), ("filter", run_filter), ("dedup", run_dedup)):
        counts[stage] = run(spark, config, inputs, str(out))["kept"]
        assert len(pq.read_table(out / stage)) == counts[stage] > 0, stage
        inputs = [str(out / stage)]
    stats = run_tokenize(spark, config, inputs, str(out))
    assert stats["input"] == counts["dedup"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert not (out / "_tmp").exists()
    assert json.loads((out / "run.json").read_text())["stages"].keys() == {
        "extract",
        "filter",
        "dedup",
        "tokenize",
    }


def test_buckets_that_are_not_names_are_refused_before_any_work(spark, documents, tmp_path):
    inputs, _ = documents
    docs = spark.read.parquet(inputs[0])
    docs.withColumn("bucket", F.lit(3)).write.parquet(str(tmp_path / "numbered"))
    with pytest.raises(TokenizeError, match="the bucket column is int, not string"):
        tokenize(spark, [str(tmp_path / "numbered")], tmp_path / "out")
    docs.withColumn("bucket", F.lit("manifest.json")).write.parquet(str(tmp_path / "named"))
    with pytest.raises(TokenizeError, match="'manifest.json' are not usable folder names"):
        tokenize(spark, [str(tmp_path / "named")], tmp_path / "out")
    assert not (tmp_path / "out" / "tokens").exists()


def test_the_mix_stages_plan_is_read_beside_its_documents_on_any_filesystem(
    spark, tmp_path, capsys
):
    """`--input s3a://.../mix`: the plan was read from local paths only, so a cluster run got
    natural proportions; the mix stage's epoch cap wins over tokenize.max_epochs."""
    from curation.mix import MixError
    from curation.spark.fs import HadoopFS

    mix = tmp_path / "mix"
    mix.mkdir()
    plan = {"mixtures": {"pretrain": {"news": 0.7, "web": 0.3, "gone": 0.1}}}
    (mix / "_mixture.json").write_text(json.dumps({**plan, "report": {"max_epochs": 6.0}}))
    buckets = {"news": {}, "web": {}}
    for spec in (str(mix), mix.as_uri() + "/"):
        planned = planned_mixtures(HadoopFS(spark), [spec], buckets, 4.0)
        assert planned["mixtures"]["pretrain"] == {"news": 0.7, "web": 0.3}
        assert planned["mixtures"]["anneal"] == planned["mixtures"]["pretrain"]
        assert planned["max_epochs"] == 6.0 and planned["mixtures_note"].endswith(
            "(mix/_mixture.json)"
        )
        err = capsys.readouterr().err
        assert "max_epochs 6 from the mix stage's plan" in err
        assert "'pretrain' mixture weights gone (0.1), which hold no training documents here" in err
    with pytest.raises(MixError, match=r"names the mix stage's documents"):  # mix folders
        planned_mixtures(HadoopFS(spark), [str(tmp_path / "*")], buckets, 4.0)
    named = tmp_path / "run [v2]" / "mix"  # a run folder named with `[ ]` is no glob
    shutil.copytree(mix, named)
    planned = planned_mixtures(HadoopFS(spark), [str(named)], buckets, 4.0)
    assert planned["mixtures"]["pretrain"] == {"news": 0.7, "web": 0.3}


def test_a_plan_with_its_settings_is_planned_again_on_the_counted_tokens(spark, tmp_path, capsys):
    from curation.mix import MixConfig
    from curation.spark.fs import HadoopFS
    from refinery.config import to_dict

    mix = tmp_path / "mix"
    mix.mkdir()
    estimated = {"pretrain": {"news": 0.5, "web": 0.5}}  # what characters / 4 gave
    settings = to_dict(MixConfig(targets={"news": 0.5, "web": 0.5, "gone": 0.2}))
    plan = {"mixtures": estimated, "report": {"max_epochs": 4.0}, "settings": settings}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    buckets = {"news": {"tokens": 300}, "web": {"tokens": 100}, "anneal.web": {"tokens": 100}}
    planned = planned_mixtures(HadoopFS(spark), [str(mix)], buckets, 4.0)
    assert planned["mixtures"]["pretrain"] == {"anneal.web": 0.25, "news": 0.5, "web": 0.25}
    assert planned["mixtures_note"] == (
        "planned by the mix stage's settings (mix/_mixture.json) on counted tokens"
    )
    assert "note: on the counted tokens, targets not met" not in capsys.readouterr().out
    capped = to_dict(MixConfig(targets={"news": 0.1, "web": 0.9}, max_epochs=1.0))
    plan = {"mixtures": estimated, "report": {"max_epochs": 1.0}, "settings": capped}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    planned_mixtures(HadoopFS(spark), [str(mix)], buckets, 1.0)
    assert "note: on the counted tokens, targets not met with at most mix.max_epochs=1" in (
        capsys.readouterr().out
    )
    # every document of the targeted domain lost after mix (a decontaminated copy): it failed
    # at the end of tokenize, blaming mix.targets; now the copy stands, and the loss is said
    lost = {"pretrain": {"anneal.science": 1.0}, "anneal": {"anneal.science": 1.0}}
    settings = to_dict(MixConfig(targets={"science": 1.0}))
    plan = {"mixtures": lost, "report": {"max_epochs": 4.0}, "settings": settings}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    assert planned_mixtures(HadoopFS(spark), [str(mix)], {"news": {"tokens": 9}}, 4.0) == {}
    err = capsys.readouterr().err
    assert "its settings plan nothing on these documents (mix.targets" in err
    assert (
        "'anneal' mixture weights anneal.science (1), which hold no training documents here" in err
    )
    assert "none of its buckets is left: the anneal mixture is the pretrain one" in err
    assert "the manifest weighs the buckets by their tokens, with tokenize.max_epochs" in err
    # some buckets lost and the rest planned again: said so, not "scaled"
    partial = {"pretrain": {"news": 0.45, "anneal.news": 0.05, "web": 0.5}}
    settings = to_dict(MixConfig(targets={"news": 0.5, "web": 0.5}))
    plan = {"mixtures": partial, "report": {"max_epochs": 4.0}, "settings": settings}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    buckets = {"news": {"tokens": 90}, "web": {"tokens": 100}}
    planned = planned_mixtures(HadoopFS(spark), [str(mix)], buckets, 4.0)
    assert planned["mixtures"]["pretrain"] == {"news": 0.5, "web": 0.5}
    err = capsys.readouterr().err
    assert "weights anneal.news (0.05), which hold no training documents here" in err
    assert "all in the validation split): planned again without them" in err
    # natural proportions losing the anneal subset: said too (it was silent)
    natural = {"pretrain": {"news": 0.9, "anneal.news": 0.1}, "anneal": {"anneal.news": 1.0}}
    plan = {"mixtures": natural, "report": {"max_epochs": 4.0}, "settings": to_dict(MixConfig())}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    planned = planned_mixtures(HadoopFS(spark), [str(mix)], {"news": {"tokens": 9}}, 4.0)
    assert planned["mixtures"] == {"pretrain": {"news": 1.0}, "anneal": {"news": 1.0}}
    assert "'anneal' mixture weights anneal.news (1), which hold no training documents" in (
        capsys.readouterr().err
    )
    # an anneal mixture of its anneal bucket and pretrain ones: those are left, and said so
    mixed = {"pretrain": {"news": 0.9, "anneal.news": 0.1}}
    mixed["anneal"] = {"anneal.news": 0.5, "news": 0.5}
    plan = {"mixtures": mixed, "report": {"max_epochs": 4.0}, "settings": to_dict(MixConfig())}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    planned = planned_mixtures(HadoopFS(spark), [str(mix)], {"news": {"tokens": 9}}, 4.0)
    assert planned["mixtures"] == {"pretrain": {"news": 1.0}, "anneal": {"news": 1.0}}
    err = capsys.readouterr().err
    assert "no anneal bucket is left: the anneal mixture is the pretrain one" in err
    assert "none of its buckets is left" not in err


def test_inputs_with_different_mixture_plans_or_none_are_refused(spark, tmp_path):
    """Two mix outputs (other targets) tokenized together took the first one's weights for
    the buckets of both, and documents of an input without a plan got no weight at all."""
    from curation.mix import MixError
    from curation.spark.fs import HadoopFS

    plans = [{"mixtures": {"pretrain": {"news": w, "web": 1 - w}}} for w in (0.7, 0.2, 0.7)]
    for name, plan in zip("abc", plans, strict=True):
        (tmp_path / name).mkdir()
        (tmp_path / name / "_mixture.json").write_text(json.dumps(plan))
    (tmp_path / "plain").mkdir()
    fs = HadoopFS(spark)
    folders = {name: str(tmp_path / name) for name in ("a", "b", "c", "plain")}
    assert mixture_plan(fs, [folders["a"], folders["c"]])[1] == plans[0]  # the same plan
    with pytest.raises(MixError, match=r"a/_mixture.json and .*b/_mixture.json are different"):
        mixture_plan(fs, [folders["a"], folders["b"]])
    with pytest.raises(MixError, match=r"plain has no _mixture.json beside .*a/_mixture.json"):
        mixture_plan(fs, [folders["a"], folders["plain"]])
    with pytest.raises(MixError, match=r"plain/\*.parquet has no _mixture.json beside .*glob"):
        mixture_plan(fs, [folders["a"], f"{folders['plain']}/*.parquet"])
    assert mixture_plan(fs, [folders["plain"]]) is None
    # the mix stage's part files or a glob of them, alone: they went without its weights
    for spec in ("a/part-00000.parquet", "a/*.parquet", "*", "[ab]", "?/*.parquet", "{a,b}"):
        with pytest.raises(MixError, match=r"names the mix stage's documents, whose weights are"):
            mixture_plan(fs, [f"{tmp_path}/{spec}"])
    assert mixture_plan(fs, [f"{folders['plain']}/*.parquet"]) is None
    odd = tmp_path / "x[1"  # a folder's name Hadoop cannot parse as a glob
    odd.mkdir()
    assert mixture_plan(fs, [f"{odd}/part-0.parquet"]) is None  # nothing there: a glob
    (odd / "part-0.parquet").touch()
    assert mixture_plan(fs, [f"{odd}/part-0.parquet"]) is None  # a file, named literally


def test_mix_parts_alone_are_refused_before_any_tokenizing(spark, tmp_path, monkeypatch):
    import jobs.tokenize as job
    from curation.mix import MixError

    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "_mixture.json").write_text("{}")
    monkeypatch.setattr(job, "read_documents", lambda *args, **kwargs: pytest.fail("read"))
    config = load_curation_config(overrides=OVERRIDES)
    with pytest.raises(MixError, match="names the mix stage's documents"):
        run_tokenize(spark, config, [str(tmp_path / "mix" / "part-0.parquet")], str(tmp_path))


def test_buckets_the_plan_weights_but_no_shard_holds_are_said_and_the_rest_scaled(
    spark, tmp_path, capsys
):
    """A decontaminated copy of mix's output can lose every document of a bucket: the weights
    summed to less than 1 and an anneal mixture of that bucket alone became the pretrain one,
    both without a word."""
    from curation.spark.fs import HadoopFS

    mix = tmp_path / "mix"
    mix.mkdir()
    weights = {"pretrain": {"news": 0.6, "web": 0.3, "anneal": 0.1}, "anneal": {"anneal": 1.0}}
    plan = {"mixtures": weights, "report": {"max_epochs": 4.0}}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    planned = planned_mixtures(HadoopFS(spark), [str(mix)], {"news": {}, "web": {}}, 4.0)
    assert planned["mixtures"]["pretrain"] == pytest.approx({"news": 2 / 3, "web": 1 / 3})
    assert planned["mixtures"]["anneal"] == planned["mixtures"]["pretrain"]
    err = capsys.readouterr().err
    assert "'pretrain' mixture weights anneal (0.1), which hold no training documents here" in err
    assert "the rest are scaled to sum to 1" in err
    assert "none of its buckets is left: the anneal mixture is the pretrain one" in err
    # nothing lost: the plan's weights as written (the manifest fingerprint stays the same)
    third = {"a": 0.333333333, "b": 0.333333333, "c": 0.333333334}
    plan = {"mixtures": {"pretrain": third}, "report": {"max_epochs": 4.0}}
    (mix / "_mixture.json").write_text(json.dumps(plan))
    buckets = {"a": {}, "b": {}, "c": {}}
    assert planned_mixtures(HadoopFS(spark), [str(mix)], buckets, 4.0)["mixtures"]["pretrain"] == (
        third
    )


def test_an_empty_validation_split_is_said(spark, tokenized, documents, tmp_path, capsys):
    out, _ = tokenized
    inputs, _ = documents
    given = f"tokenize.tokenizer={out / 'tokens' / 'tokenizer.json'}"
    tokenize(spark, inputs[:1], tmp_path, given, "tokenize.validation_share=1e-9")
    assert read_manifest(tmp_path / "tokens").validation.documents == 0
    assert "fell in the validation split (tokenize.validation_share=1e-09)" in (
        capsys.readouterr().err
    )


def test_train_tokenizer_samples_the_documents(spark, documents, tmp_path):
    inputs, _ = documents
    config = load_curation_config(overrides=["tokenize.vocab_size=600"])
    target = tmp_path / "tokenizer" / "tokenizer.json"
    trained_tokenizer(spark.read.parquet(*inputs), config.tokenize, target)
    tokenizer = load_tokenizer(target)
    assert 263 < tokenizer.get_vocab_size() <= 600
    assert len(tokenizer.encode(LONG_TEXT).ids) < len(LONG_TEXT) / 3


def test_a_kept_tokenizer_is_said_with_its_sha256_and_when_trained_otherwise(
    documents, tmp_path, capsys
):
    """A rerun with another vocabulary size or input kept the old tokenizer without a word;
    a missing input was not said either (the skip came first)."""
    from jobs.train_tokenizer import TRAINING_RECORD, training_record
    from refinery.config import to_dict

    inputs, _ = documents
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    shutil.copy(REPO / "conf" / "posttrain" / "demo_sft.jsonl", folder / "tokenizer.json")
    args = ["train-tokenizer", "--input", inputs[0], "--output", str(tmp_path)]
    assert refinery(args) == 0  # trained before records were kept: not second-guessed
    said = capsys.readouterr().out
    assert "already done" in said and "sha256:" in said and "note:" not in said
    record = training_record(load_curation_config().tokenize, str(tmp_path), [inputs[0]])
    (folder / TRAINING_RECORD).write_text(json.dumps(record))
    assert refinery(args) == 0
    assert "note:" not in capsys.readouterr().out
    # settings that shape only the shards are no other training (they were said to be)
    assert refinery([*args, "tokenize.max_epochs=2", "tokenize.partitions=3"]) == 0
    assert "note:" not in capsys.readouterr().out
    old = {**record, "tokenize": to_dict(load_curation_config().tokenize)}  # all settings
    (folder / TRAINING_RECORD).write_text(json.dumps(old))
    assert refinery([*args, "tokenize.max_epochs=2"]) == 0
    assert "note:" not in capsys.readouterr().out
    assert refinery([*args, "tokenize.vocab_size=4096"]) == 0
    assert "it was trained with other tokenize.* settings or --input" in capsys.readouterr().out
    assert refinery([*args[:2], str(tmp_path / "gone"), *args[3:]]) == 2
    assert "gone" in capsys.readouterr().err


def test_a_moved_run_s_tokenizer_is_not_said_to_be_trained_on_other_input(
    documents, tmp_path, capsys
):
    """The record held absolute paths: a run folder moved (or copied) and rerun on its own
    documents was said to have trained its tokenizer on other --input."""
    from jobs.train_tokenizer import TRAINING_RECORD, training_record

    inputs, _ = documents
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(inputs[0], before / "mix")
    folder = before / "tokenizer"
    folder.mkdir()
    shutil.copy(REPO / "conf" / "posttrain" / "demo_sft.jsonl", folder / "tokenizer.json")
    tokenize = load_curation_config().tokenize
    record = training_record(tokenize, str(before), [str(before / "mix")])
    assert record["inputs"] == ["mix"]
    (folder / TRAINING_RECORD).write_text(json.dumps(record))
    before.rename(after)
    args = ["train-tokenizer", "--input", str(after / "mix"), "--output", str(after)]
    assert refinery(args) == 0
    assert "note:" not in capsys.readouterr().out
    # a record written before inputs inside OUT were relative: as they are now
    legacy = {**record, "inputs": [str(after / "mix")]}
    (after / "tokenizer" / TRAINING_RECORD).write_text(json.dumps(legacy))
    assert refinery(args) == 0
    assert "note:" not in capsys.readouterr().out
    assert refinery([*args[:2], inputs[0], *args[3:]]) == 0  # other documents
    assert "trained with other tokenize.* settings or --input" in capsys.readouterr().out


def test_a_retrain_stopped_midway_leaves_no_tokenizer_beside_another_s_record(
    documents, tmp_path, monkeypatch
):
    """The record was written after the tokenizer: a run killed between them left the new
    tokenizer beside the old record (or none), and reruns kept it without the right note.
    A retrain that fails (no text in a mistyped --input) deleted the working tokenizer."""
    import jobs.train_tokenizer as job

    inputs, _ = documents
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    old_tokenizer = (REPO / "conf" / "posttrain" / "demo_sft.jsonl").read_bytes()
    (folder / "tokenizer.json").write_bytes(old_tokenizer)
    old_record = json.dumps({"tokenize": {"vocab_size": 1}})
    (folder / job.TRAINING_RECORD).write_text(old_record)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(job, "build_session", lambda *args: SimpleNamespace(stop=lambda: None))
    monkeypatch.setattr(job, "read_documents", lambda *args: None)
    monkeypatch.setattr(job, "trained_tokenizer", killed)
    args = ["--input", inputs[0], "--output", str(tmp_path), "--force", "tokenize.vocab_size=600"]
    with pytest.raises(KeyboardInterrupt):  # while training: the old pair is kept
        job.main(args)
    assert (folder / "tokenizer.json").read_bytes() == old_tokenizer
    assert (folder / job.TRAINING_RECORD).read_text() == old_record

    trained = []  # trained, then killed as the record is written: no tokenizer, redone next
    monkeypatch.setattr(job, "trained_tokenizer", lambda d, c, path: trained.append(path))
    real_write = job.write_results

    def write_then_kill(path, content):
        real_write(path, content)
        raise KeyboardInterrupt

    monkeypatch.setattr(job, "write_results", write_then_kill)
    with pytest.raises(KeyboardInterrupt):
        job.main(args)
    assert trained and trained[0] != folder / "tokenizer.json"  # trained beside it
    assert not (folder / "tokenizer.json").exists()  # the next run trains
    config = load_curation_config(overrides=["tokenize.vocab_size=600"])
    recorded = json.loads((folder / job.TRAINING_RECORD).read_text())
    assert recorded == job.training_record(config.tokenize, str(tmp_path), [inputs[0]])


def test_a_tokenizer_sample_without_text_or_too_small_for_the_vocabulary_is_said(
    spark, documents, tmp_path, capsys
):
    inputs, _ = documents
    extra = spark.read.parquet(inputs[1])  # "", "   \n " and LONG_TEXT
    target = tmp_path / "tokenizer.json"
    config = load_curation_config(overrides=["tokenize.vocab_size=600"]).tokenize
    with pytest.raises(
        TokenizeError,
        match=r"no non-empty text outside the validation split \(tokenize.validation_share="
        r"0.01\) to train a tokenizer on in .*",
    ):
        trained_tokenizer(extra.where(F.length(F.trim("text")) < 1000), config, target)
    assert not target.exists()
    trained_tokenizer(extra, config, target)
    size = load_tokenizer(target).get_vocab_size()
    assert size < 600 and (
        f"tokenizer: {size} tokens, fewer than tokenize.vocab_size=600: the sample (1 documents,"
        in capsys.readouterr().err
    )


def test_a_failed_attempt_leaves_no_tmp_folder_in_out(spark, documents, tmp_path):
    """A stage that failed after its tasks wrote kept their shards in OUT/_tmp, one folder
    more with each failure (swept only by a later success)."""
    inputs, _ = documents
    blank = str(tmp_path / "blank")
    spark.read.parquet(inputs[1]).where(F.length(F.trim("text")) < 1000).write.parquet(blank)
    out = tmp_path / "out"
    for _ in range(2):
        with pytest.raises(TokenizeError, match="no non-empty text outside the validation"):
            tokenize(spark, [blank], out)
    assert not list(out.glob("_tmp/*"))
    assert not (out / "tokens").exists()


def test_the_tokenizer_sample_does_not_depend_on_the_partitioning(spark, documents):
    inputs, _ = documents
    docs = spark.read.parquet(*inputs)
    total = sum(len(row["text"].encode()) for row in docs.select("text").collect())
    samples = [
        list(sample_texts(docs.repartition(parts), total // 2, seed=3, validation_share=0))
        for parts in (1, 5)
    ]
    assert samples[0] == samples[1]  # in the same order too
    assert 0.25 * total < sum(len(t.encode()) for t in samples[0]) < 0.75 * total
    assert sorted(sample_texts(docs, total // 2, seed=4, validation_share=0)) != sorted(samples[0])


def test_the_tokenizer_sample_is_drawn_in_one_parallel_scan(spark, documents):
    """toLocalIterator on the input's own partitions scanned them one job after another."""
    from curation.spark.tokens import SAMPLE_PARTITIONS

    inputs, _ = documents
    docs = spark.read.parquet(*inputs).repartition(3 * SAMPLE_PARTITIONS)
    spark.sparkContext.setJobGroup("tokenizer-sample", "the sample's jobs")
    try:
        assert list(sample_texts(docs, 1 << 30, seed=0, validation_share=0))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup("tokenizer-sample")
    assert len(jobs) < 3 * SAMPLE_PARTITIONS  # one job per input partition, and more, before


def test_the_tokenizer_sample_leaves_out_the_validation_documents(spark):
    rows = [(f"doc-{i}", f"text number {i}") for i in range(200)]
    docs = spark.createDataFrame(rows, "id string, text string")
    sampled = set(sample_texts(docs, 1 << 20, seed=7, validation_share=0.25))
    held_out = {t for i, t in rows if is_validation(document_hash(i, 7), 0.25)}
    assert 25 < len(held_out) < 75  # the stage's own rule, same seed and share
    assert sampled == {t for _, t in rows} - held_out


def test_the_tokenizer_sample_and_the_stage_call_the_same_texts_blank(spark):
    """The sample is a Spark filter, the stage's `empty` reason Python: one White_Space set."""
    texts = ["\u3000\u2028\xa0 \t", "\x1c\x1d\x1e\x1f", "\u200b", " a "]
    rows = [(f"d{i}", text) for i, text in enumerate(texts)]
    docs = spark.createDataFrame(rows, "id string, text string")
    sampled = sorted(sample_texts(docs, 1 << 20, seed=0, validation_share=0))
    assert sampled == sorted(t for t in texts if reject_reason(t) is None)
    assert sampled == sorted(texts[1:])  # U+200B and the separators are not White_Space


def test_inspect_shards_accepts_a_valid_folder(tokenized, capsys):
    out, _ = tokenized
    assert refinery(["inspect-shards", str(out / "tokens"), "--docs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "web" in printed and "(validation)" in printed and "ok: " in printed
    # as `refinery curate` names it when OUT was given as a file: URI
    for uri in (f"file://{out / 'tokens'}/", f"file:{out / 'tokens'}"):
        assert refinery(["inspect-shards", uri, "--docs", "0"]) == 0
        assert "ok: " in capsys.readouterr().out


def test_inspect_shards_shows_special_tokens_pieces_and_control_characters_apart(tokenized, capsys):
    """A literal `<|end_of_text|>` in a page looked like the real EOS, an ANSI escape
    recoloured the terminal, and a piece of a split document looked like a whole one."""
    from refinery.inspect_shards import shown_text
    from refinery.tokenizer import EOS, load_tokenizer, special_ids

    out, _ = tokenized
    tokenizer = load_tokenizer(out / "tokens" / "tokenizer.json")
    ids = tokenizer.encode("a <|end_of_text|> \x1b[31m red").ids + [special_ids(tokenizer)[EOS]]
    assert shown_text(tokenizer, ids) == "a <|end_of_text|> \\x1b[31m red⟦<|end_of_text|>⟧"
    # a piece cut inside a character: its stray bytes as written, not as U+FFFD (damage)
    ids = tokenizer.encode("東京 and more").ids
    cut = next(n for n in range(1, len(ids)) if tokenizer.decode(ids[n:]).startswith("\ufffd"))
    assert shown_text(tokenizer, ids[cut:]).startswith("\\x")
    assert "\ufffd" not in shown_text(tokenizer, ids[cut:])
    assert shown_text(tokenizer, ids) == "東京 and more"
    from tokenizers import AddedToken

    tokenizer.add_tokens([AddedToken("    ", normalized=False)])  # text, not byte-level
    spaced = tokenizer.encode("a    b").ids
    assert shown_text(tokenizer, spaced) == tokenizer.decode(spaced)  # was a KeyError
    assert refinery(["inspect-shards", str(out / "tokens"), "--docs", "200"]) == 0
    printed = capsys.readouterr().out
    assert "⟦<|end_of_text|>⟧" in printed and "a piece of a longer document: " in printed


def damage_truncate(tokens: Path) -> str:
    shard = sorted((tokens / "web").glob("*.bin"))[0]
    shard.write_bytes(shard.read_bytes()[:-6])
    return "truncated or corrupted"


def damage_magic(tokens: Path) -> str:
    shard = sorted((tokens / "web").glob("*.bin"))[0]
    shard.write_bytes(b"NOTTOKEN" + shard.read_bytes()[8:])
    return "bad magic"


def damage_token_ids(tokens: Path) -> str:
    shard = sorted((tokens / "validation").glob("*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    raw[HEADER_BYTES : HEADER_BYTES + 2] = b"\xff\xff"
    shard.write_bytes(bytes(raw))
    return "outside the vocabulary"


def damage_in_range(tokens: Path) -> str:
    """Token id 5 and an index byte: every count and id still plausible."""
    shard = sorted((tokens / "web").glob("*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    raw[HEADER_BYTES + 100 : HEADER_BYTES + 102] = b"\x05\x00"
    shard.write_bytes(bytes(raw))
    return "its bytes differ from the sha256 manifest.json records"


def damage_validation_listing(tokens: Path) -> str:
    """The validation split names a training shard: held-out loss on trained-on text."""
    manifest = json.loads((tokens / "manifest.json").read_text())
    shard = manifest["buckets"]["web"]["shards"][0]
    validation = manifest["validation"]
    validation["shards"].append(shard)
    for key in ("tokens", "documents", "bytes"):
        validation[key] += shard[key]
    (tokens / "manifest.json").write_text(json.dumps(manifest))
    return "is also a shard of buckets.web"


def damage_index(tokens: Path) -> str:
    next(iter((tokens / "web").glob("*.idx"))).unlink()
    return "index file is missing"


def damage_tokenizer(tokens: Path) -> str:
    with open(tokens / "tokenizer.json", "a") as f:
        f.write(" ")
    return "sha256 differs"


def damage_manifest_vocabulary(tokens: Path) -> str:
    """A larger vocabulary than the tokenizer's: ids beyond it would pass the id check."""
    manifest = json.loads((tokens / "manifest.json").read_text())
    size = manifest["tokenizer"]["vocab_size"]
    manifest["tokenizer"].update(vocab_size=size + 1000, eos_id=5)
    (tokens / "manifest.json").write_text(json.dumps(manifest))
    eos = manifest["tokenizer"]["special_tokens"][EOS]
    return (
        f"tokenizer.vocab_size is {size + 1000}, the file says {size}; "
        f"tokenizer.eos_id is 5, the file says {eos}"
    )


@pytest.mark.parametrize(
    "damage",
    [
        damage_truncate,
        damage_magic,
        damage_token_ids,
        damage_in_range,
        damage_validation_listing,
        damage_index,
        damage_tokenizer,
        damage_manifest_vocabulary,
    ],
)
def test_inspect_shards_refuses_a_damaged_folder(tokenized, tmp_path, capsys, damage):
    out, _ = tokenized
    tokens = tmp_path / "tokens"
    shutil.copytree(out / "tokens", tokens)
    message = damage(tokens)
    assert refinery(["inspect-shards", str(tokens)]) == 2
    err = capsys.readouterr().err
    assert "refinery inspect-shards: error:" in err and message in err, err


@pytest.mark.slow
def test_the_trainer_trains_on_the_stage_output(tokenized, tmp_path):
    out, _ = tokenized
    run = tmp_path / "train"
    args = ["--config", str(TINY), f"data={out / 'tokens'}", f"out={run}", "max_steps=4"]
    quiet = ["train.progress=false", "train.tensorboard=false", "train.eval_every=2"]
    assert refinery(["train", *args, *quiet]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert np.isfinite(rows[-1]["val_loss"])
    assert (run / "ckpt-4" / "tokenizer.json").read_bytes() == (
        out / "tokens" / "tokenizer.json"
    ).read_bytes()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "refinery", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_curate_ends_with_tokens_that_inspect_shards_accepts(sample_crawl, tmp_path):
    out = tmp_path / "out"
    done = run_cli(
        "curate", "--input", str(sample_crawl), "--output", str(out), "spark.master=local[2]"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "tokens" / "manifest.json").is_file()
    assert (out / "tokens" / "tokenizer.json").is_file()
    manifest = read_manifest(out / "tokens")
    mixture = json.loads((out / "mix" / "_mixture.json").read_text())
    # every stage ran; buckets and weights are the mix stage's, limited to buckets with shards
    assert set(manifest.buckets) <= set(mixture["buckets"]) and manifest.buckets
    assert sum(b.tokens for b in manifest.buckets.values()) > 0
    assert set(manifest.mixture("pretrain")) == set(manifest.buckets)
    stats = {s: json.loads((out / "stats" / f"{s}.json").read_text()) for s in ("dedup", "mix")}
    assert stats["mix"]["input"] == stats["dedup"]["kept"]
    checked = run_cli("inspect-shards", str(out / "tokens"))
    assert checked.returncode == 0, checked.stderr
    trained = run_cli(
        "train-tokenizer",
        "--input",
        str(out / "extract"),
        "--output",
        str(out),
        "spark.master=local[2]",
        "tokenize.vocab_size=600",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "sha256:" in trained.stdout
    assert load_tokenizer(out / "tokenizer" / "tokenizer.json").get_vocab_size() <= 600
    rerun = run_cli("train-tokenizer", "--input", str(out / "extract"), "--output", str(out))
    assert "train-tokenizer: already done" in rerun.stdout  # as a finished stage is kept

    # a stage run again alone makes the next curate redo the stages after it: they were
    # skipped as done, and their stats no longer followed from its output
    def again(command: str, source: Path, *extra: str) -> str:
        done = run_cli(
            command, "--input", str(source), "--output", str(out), *extra, "spark.master=local[2]"
        )  # flags first: the key=value overrides must stay together
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    stricter = "filter.gopher_quality.min_words=150"
    again("filter", out / "extract", "--force", stricter)
    second = again("curate", sample_crawl, stricter)
    assert "filter: already done" in second and "dedup: filter ran again" in second
    stats = {s: json.loads((out / "stats" / f"{s}.json").read_text()) for s in ("filter", "dedup")}
    assert stats["dedup"]["input"] == stats["filter"]["kept"]
    # and so does a stage run alone on the output of one that ran again after it
    again("filter", out / "extract", "--force")
    alone = again("dedup", out / "filter")
    assert "dedup: filter ran again" in alone and "dedup: already done" not in alone
    stats = {s: json.loads((out / "stats" / f"{s}.json").read_text()) for s in ("filter", "dedup")}
    assert stats["dedup"]["input"] == stats["filter"]["kept"]
    same = again("dedup", out / "filter")
    assert "dedup: already done" in same and "note:" not in same
    # other documents into the same OUT: the skip says what it read (paths inside OUT relative)
    other = again("dedup", out / "extract")
    assert "dedup: note: it read filter, not extract, and its output is kept" in other
    again("mix", out / "dedup", "--force")
    third = again("curate", sample_crawl, stricter)
    assert "tokenize: mix ran again" in third, third[-2000:]  # its folder: tokens/
    # the filter's output, made without `stricter` since, is kept, and that is said
    assert "filter: note: it ran with other filter.* settings than these" in third
    assert "note:" not in second and third.count("note:") == 1


def test_a_done_stage_is_stale_when_the_stage_it_reads_finished_after_it():
    times = {"filter": {"finished": "2026-12-05T12:00:09+00:00"}}
    times["dedup"] = {"finished": "2026-12-05T12:00:05+00:00"}
    assert "dedup: filter ran again" in ran_since(times, "dedup", "filter")
    times["dedup"]["finished"] = "2026-12-05T12:00:09+00:00"  # the same second: in order
    assert ran_since(times, "dedup", "filter") is None
    assert ran_since({}, "dedup", "filter") is None  # a run folder from before run.json times


def test_a_stale_stage_is_found_however_the_run_folder_is_written(spark, tmp_path):
    from curation.spark.fs import HadoopFS
    from jobs.common import read_since

    times = {"filter": {"finished": "2026-12-05T12:00:09+00:00"}}
    times["dedup"] = {"finished": "2026-12-05T12:00:05+00:00"}
    (tmp_path / "run.json").write_text(json.dumps({"stages": times}))
    fs = HadoopFS(spark)
    link = tmp_path.parent / f"{tmp_path.name}-link"  # the run folder through a link
    link.symlink_to(tmp_path)
    for out in (str(tmp_path), f"file://{tmp_path}", f"file:{tmp_path}/", str(link)):
        for read in (
            str(tmp_path / "filter"),
            str(link / "filter"),
            f"file://{tmp_path}/filter/",
            str(tmp_path / "filter" / "*.parquet"),  # a glob or a part file reads the stage
            str(tmp_path / "filter" / "part-00000.parquet"),
        ):
            assert "dedup: filter ran again" in read_since(fs, out, "dedup", [read]), (out, read)
    assert read_since(fs, str(tmp_path), "dedup", [str(tmp_path / "extract")]) is None
    assert read_since(fs, str(tmp_path), "mix", [str(tmp_path / "filter")]) is None  # not run
    warcs = [f"s3://bucket/crawl/{n}.warc.gz" for n in range(3)]  # boto3's, not Hadoop's
    assert read_since(fs, str(tmp_path), "dedup", warcs) is None


def test_a_stages_settings_hash_follows_its_own_sections_only():
    from curation.config import load_curation_config, stage_settings_hash
    from jobs.extract import input_files
    from refinery.config import to_dict

    def hashes(*overrides, inputs=("a.warc.gz", "b.warc.gz")):
        config = to_dict(load_curation_config(overrides=list(overrides)))
        config["inputs"] = input_files(list(inputs))  # as extract records them
        return {s: stage_settings_hash(config, s) for s in ("extract", "filter", "dedup")}

    base = hashes()
    assert hashes("input.files_per_task=7", "spark.master=local[1]") == base
    changed = hashes("filter.gopher_quality.min_words=150")
    assert [s for s in base if changed[s] != base[s]] == ["filter"]
    assert hashes("input.limit=1")["extract"] != base["extract"]
    assert hashes(inputs=("b.warc.gz", "a.warc.gz")) == base
    assert hashes(inputs=("a.warc.gz",))["extract"] != base["extract"]
    # mix labels by the URL rules the documents classify did not label; a run.json written
    # when its hash covered mix.* alone still matches
    from curation.spark.stage import other_settings

    class Recorded:  # run.json as HadoopFS reads it
        def __init__(self, stages):
            self.stages = stages

        def exists(self, path):
            return True

        def read_json(self, path):
            return {"stages": self.stages}

    now = to_dict(load_curation_config())
    earlier = stage_settings_hash(now, "mix", ("mix",))
    assert other_settings(Recorded({"mix": {"settings_hash": earlier}}), "o", "mix", now) is None
    stale = {"mix": {"settings_hash": "0" * 16}}
    assert "mix.* and classify.domains.*" in other_settings(Recorded(stale), "o", "mix", now)
    config = to_dict(load_curation_config(overrides=["classify.domains.fallback=news"]))
    assert stage_settings_hash(config, "mix") != stage_settings_hash(
        to_dict(load_curation_config()), "mix"
    )
    assert stage_settings_hash(to_dict(load_curation_config()), "contamination") is None


def test_each_stage_records_its_own_settings_in_run_json(monkeypatch):
    """The top-level config is the last stage's; a stage run later under other filter.*
    settings (`mix --force ... filter.x=y`) leaves what filter itself ran with."""
    from curation.config import load_curation_config
    from curation.spark import stage as stage_module
    from refinery.config import to_dict

    class Folder:  # OUT as HadoopFS sees it
        def __init__(self):
            self.files = {}

        def exists(self, path):
            return path in self.files

        def read_json(self, path):
            return json.loads(self.files[path])

        def write_json(self, path, value):
            self.files[path] = json.dumps(value)

        def spark_settings(self, keys):
            return {}

    monkeypatch.setattr(stage_module, "provenance", lambda: {})
    fs, stats = Folder(), {"seconds": 1.0, "input": 2, "kept": 1, "errors": 0}
    ran = to_dict(load_curation_config(overrides=["filter.gopher_quality.min_words=50"]))
    stage_module.record_run(fs, "o", ran, "filter", stats)
    later = to_dict(load_curation_config(overrides=["filter.gopher_quality.min_words=10"]))
    stage_module.record_run(fs, "o", later, "mix", stats)
    run = fs.read_json("o/run.json")
    assert run["config"]["filter"]["gopher_quality"]["min_words"] == 10
    assert run["stages"]["filter"]["settings"]["filter"]["gopher_quality"]["min_words"] == 50
    assert set(run["stages"]["mix"]["settings"]) == {"mix", "classify.domains"}


def test_the_manifest_hash_follows_what_made_the_documents_not_this_commands_filter():
    """Tokenizing the same documents again with an unrelated `filter.*` override kept the
    shards but changed the fingerprint, and the trainer refused to resume on them."""
    from curation.config import load_curation_config
    from jobs.tokenize import curation_hash

    class RunJson:
        def __init__(self, stages):
            self.stages = stages

        def exists(self, path):
            return bool(self.stages)

        def read_json(self, path):
            return {"stages": self.stages}

    ran = RunJson({"filter": {"settings_hash": "f1"}, "tokenize": {"settings_hash": "t0"}})
    base = curation_hash(ran, "o", load_curation_config())
    other_filter = load_curation_config(overrides=["filter.gopher_quality.min_words=10"])
    assert curation_hash(ran, "o", other_filter) == base
    assert curation_hash(RunJson({"filter": {"settings_hash": "f1"}}), "o", other_filter) == base
    vocab = load_curation_config(overrides=["tokenize.vocab_size=2048"])
    assert curation_hash(ran, "o", vocab) != base
    refiltered = RunJson({"filter": {"settings_hash": "f2"}})
    assert curation_hash(refiltered, "o", load_curation_config()) != base


def test_the_data_hash_ignores_how_the_work_was_split():
    from curation.config import data_settings, load_curation_config
    from refinery.config import config_hash, to_dict

    def data_hash(*overrides):
        config = load_curation_config(overrides=list(overrides))
        return config_hash(data_settings(to_dict(config)))

    base = data_hash()
    assert base == data_hash(
        "extract.batch_rows=4096",
        "dedup.minhash.batch_rows=64",
        "pipeline.stages=[tokenize]",
        "input.files_per_task=3",
        "filter.language.languages=[ru, pt, nl, it, fr, es, de, en]",
    )
    assert base != data_hash("filter.language.min_score=0.5")
    assert base != data_hash("filter.language.languages=[en]")


def test_a_piece_that_begins_a_shard_goes_on_from_the_shard_before():
    """The stage starts a new shard between pieces of one document: document 0 of a shard
    can be a middle or last piece, and was shown as a whole document."""
    from types import SimpleNamespace

    import numpy as np

    from refinery.inspect_shards import previous_document

    def shard(*documents):
        return SimpleNamespace(num_docs=len(documents), document=lambda i: np.array(documents[i]))

    eos = 9
    first, empty, second = shard([1, eos], [2, 3]), shard(), shard([4, eos])
    shards = [first, empty, second]
    assert previous_document(shards, first, 0) is None
    assert previous_document(shards, first, 1).tolist() == [1, eos]
    assert previous_document(shards, second, 0).tolist() == [2, 3]  # no EOS: a piece


def test_a_stage_run_alone_records_its_inputs_inside_out_relative_to_it(tmp_path):
    out = tmp_path / "run"
    inputs = [str(out / "filter"), str(tmp_path / "other" / "docs.parquet")]
    assert read_record(f"{out}/", inputs) == [str(tmp_path / "other" / "docs.parquet"), "filter"]
    assert read_record("hdfs://nn/run", ["hdfs://nn/run/dedup"]) == ["dedup"]
    assert read_record(f"file://{out}", [str(out / "filter")]) == ["filter"]
    # a relative glob, as typed in the directory above OUT: by its path in OUT
    relative = os.path.relpath(out / "filter" / "*.parquet")
    assert read_record(str(out), [relative]) == ["filter/*.parquet"]
    assert read_record(str(out), ["file:/x/a"]) == ["file:/x/a"]  # a URI as it is
    assert read_record(str(out), ["d/12:00/x"]) == [os.path.abspath("d/12:00/x")]
    link = tmp_path / "link"  # OUT through a link, the input through the folder, or both ways
    link.symlink_to(out)
    assert read_record(str(link), [str(out / "filter"), f"file://{out}/dedup"]) == [
        "dedup",
        "filter",
    ]
    assert read_record(str(out), [str(link / "filter")]) == ["filter"]


def test_a_tokenizer_trained_leaving_out_another_validation_split_is_said(tmp_path, capsys):
    from jobs.tokenize import TRAINING_RECORD, note_other_held_out

    config = load_curation_config().tokenize
    record = tmp_path / TRAINING_RECORD
    note_other_held_out(record, config)  # no record: a tokenizer from elsewhere
    settings = {"validation_share": config.validation_share, "seed": config.seed}
    record.write_text(json.dumps({"tokenize": {**settings, "vocab_size": 512}}))
    note_other_held_out(record, config)
    assert capsys.readouterr().err == ""
    record.write_text(json.dumps({"tokenize": {**settings, "validation_share": 0.01}}))
    note_other_held_out(record, dataclasses.replace(config, validation_share=0.1))
    said = capsys.readouterr().err
    assert "was trained leaving out the validation split of tokenize.validation_share=0.01" in said
    assert "holds out that of tokenize.validation_share=0.1" in said
    # with one seed a larger share left out holds this run's documents: nothing leaked
    note_other_held_out(record, dataclasses.replace(config, validation_share=0.005))
    note_other_held_out(record, dataclasses.replace(config, validation_share=0.0))
    assert capsys.readouterr().err == ""
    other_seed = dataclasses.replace(config, validation_share=0.005, seed=config.seed + 1)
    note_other_held_out(record, other_seed)
    assert "holds out that of tokenize.validation_share=0.005" in capsys.readouterr().err


def test_a_small_file_is_replaced_in_one_step_and_reads_back(spark, tmp_path):
    # a delete, then a rename, left no run.json at all to a job killed between them
    from curation.spark.fs import HadoopFS

    fs = HadoopFS(spark)
    hadoop_written = tmp_path / "stats.json"  # as Hadoop wrote it before: with a .crc beside
    stream = fs._fs(str(hadoop_written)).create(fs._path(str(hadoop_written)), True)
    stream.write(bytearray(b'{"old": 1}'))
    stream.close()
    assert (tmp_path / ".stats.json.crc").exists()
    fs.write_json(str(hadoop_written), {"new": 2})  # its checksum would fail the new content
    assert fs.read_json(str(hadoop_written)) == {"new": 2}
    (tmp_path / "stats.json").unlink()
    fs.delete = None  # never called: os.replace renames over the file
    for out in (str(tmp_path), f"file://{tmp_path}"):
        path = f"{out}/run.json"
        fs.write_json(path, {"stages": {"extract": 1}})
        fs.write_json(path, {"stages": {"extract": 2}})  # over the first
        assert fs.read_json(path) == {"stages": {"extract": 2}}
        assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.crc"))


def test_a_tokenizer_file_rewritten_in_place_is_said_when_the_tokens_are_done(tmp_path):
    """Its path, the setting, is unchanged: only its bytes tell the tokens are another's."""
    from jobs.tokenize import other_tokenizer

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "tokenizer.json").write_text('{"made": "with this"}')
    given = tmp_path / "mine.json"
    given.write_text('{"made": "with this"}')
    assert other_tokenizer(str(given), tokens) is None
    assert other_tokenizer("", tokens) is None
    given.write_text('{"trained": "again"}')
    note = other_tokenizer(str(given), tokens)
    assert f"tokenize.tokenizer={given} is not the tokenizer these tokens were made" in note
