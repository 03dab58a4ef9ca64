"""`refinery ablate` at toy scale: two arms tokenized in Spark with one tokenizer, two seeds
each, scored in bits per byte on one reference file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from curation.sample_crawl import write_reference_articles
from curation.tokenize import TokenizeError
from jobs.ablate import check_tokenization_settings, tokenize_arms
from refinery.cli import main as refinery
from refinery.config import ConfigError
from training import ablation


def test_ablation_end_to_end(spark, extract_run, tmp_path):
    out, _ = extract_run
    long_only = tmp_path / "long-only"  # a second "curation output": the longer pages only
    docs = spark.read.parquet(f"{out}/extract")
    docs.where(F.length("text") >= 1500).write.parquet(str(long_only))
    reference = write_reference_articles(tmp_path, count=5)
    cfg = ablation.load_ablation_config(
        "conf/ablate/tiny.yaml",
        [
            f"out={tmp_path / 'ablation'}",
            f"reference={reference}",
            f"arms.all={out}/extract",
            f"arms.long={long_only}",
            "seeds=[0,1]",
            "tokens=4096",
            "curation=[tokenize.vocab_size=512,tokenize.partitions=1]",
        ],
    )
    token_dirs = tokenize_arms(spark, cfg)
    shared = {(d / "tokenizer.json").read_bytes() for d in token_dirs.values()}
    assert len(shared) == 1, "every arm must be encoded with the same tokenizer"

    summary = ablation.run(cfg, token_dirs)
    saved = json.loads((Path(cfg.out) / "ablation.json").read_text())
    assert saved["ranking"] == summary["ranking"] and set(saved["ranking"]) == {"all", "long"}
    for arm in ("all", "long"):
        entry = saved["arms"][arm]
        assert entry["seeds"] == 2 and 0 < entry["bpb_mean"] < 16
    runs = sorted(p.name for p in (Path(cfg.out) / "runs").iterdir())
    assert runs == ["all-seed0", "all-seed1", "long-seed0", "long-seed1"]
    assert saved["tokens_per_run"] == 4096

    # finished runs are reused: a second call trains nothing and gives the same figures
    again = ablation.run(cfg, token_dirs)
    assert again["arms"] == summary["arms"]
    # an arm tokenized under a tokenizer since made again (or rewritten) is not reused unsaid
    held = token_dirs["long"] / "tokenizer.json"
    held.write_bytes(held.read_bytes() + b"\n")
    with pytest.raises(TokenizeError, match=r"arms.long: .* is not the shared tokenizer"):
        tokenize_arms(spark, cfg)


def test_a_rerun_with_other_tokenization_settings_is_refused(tmp_path, monkeypatch):
    def documents(name, texts=("x",)):
        (tmp_path / name).mkdir(exist_ok=True)
        table = pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})
        pq.write_table(table, tmp_path / name / "part-0.parquet")

    def config(*extra):  # arms a=x and b=y unless `extra` points them elsewhere
        arms = {"a": "x", "b": "y"} | dict(e[5:].split("=", 1) for e in extra if e[:5] == "arms.")
        rest = [e for e in extra if e[:5] != "arms."]
        named = [f"arms.{arm}={path}" for arm, path in arms.items()]
        return ablation.load_ablation_config(
            None, [f"out={tmp_path / 'out'}", "reference=r", *rest, *named]
        )

    def tokenized(*arms):  # as tokenize_arms leaves them
        for arm in arms:
            (tmp_path / "out" / "arms" / arm / "tokens").mkdir(parents=True, exist_ok=True)
            (tmp_path / "out" / "arms" / arm / "tokens" / "_SUCCESS").touch()

    for name in "xyzw":
        documents(name)
    monkeypatch.chdir(tmp_path)
    check_tokenization_settings(config())
    tokenized("a", "b")
    check_tokenization_settings(config())  # the same settings reuse the tokens
    check_tokenization_settings(config("arms.a=./x/", f"arms.b={tmp_path / 'y'}"))  # written so
    check_tokenization_settings(config("arms.c=z"))  # an arm may join
    tokenized("c")
    check_tokenization_settings(config("curation=['spark.master=local[1]']"))  # how, not what
    with pytest.raises(TokenizeError, match=r"curation: \[\] -> \['tokenize.vocab_size=512'\]"):
        check_tokenization_settings(config("curation=[tokenize.vocab_size=512]"))
    with pytest.raises(TokenizeError, match=rf"arms.b: {tmp_path / 'y'} -> {tmp_path / 'w'}"):
        check_tokenization_settings(config("arms.b=w"))
    # the message's remedies work: an arm removed is made anew; everything removed, any
    # settings (they were refused again after the removal)
    shutil.rmtree(tmp_path / "out" / "arms" / "b")
    (tmp_path / "out" / "arms" / "b" / "_tmp").mkdir(parents=True)  # a run stopped midway
    check_tokenization_settings(config("arms.b=w"))
    tokenized("b")
    with pytest.raises(TokenizeError, match=r"max_epochs: 50.0 -> 8.0"):
        check_tokenization_settings(config("arms.b=w", "max_epochs=8"))
    shutil.rmtree(tmp_path / "out" / "arms")
    check_tokenization_settings(config("arms.b=w", "max_epochs=8"))
    tokenized("a", "b")
    shutil.rmtree(tmp_path / "out" / "arms")
    check_tokenization_settings(config())
    tokenized("a", "b")
    # a record of the previous version (arms by path as given) matches the folder written so
    record = tmp_path / "out" / "tokenization.json"
    legacy = json.loads(record.read_text())
    record.write_text(json.dumps({**legacy, "arms": {"a": "x", "b": "y"}}))
    check_tokenization_settings(config("arms.a=./x"))
    documents("x", ("curated again", "into the same folder"))
    with pytest.raises(TokenizeError, match=rf"arms.a: other files -> {tmp_path / 'x'}"):
        check_tokenization_settings(config())


def test_an_arm_without_documents_is_refused_before_out_records_it(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), tmp_path / "docs" / "part-0.parquet")
    out = tmp_path / "ablation"
    reference = tmp_path / "reference.txt"
    reference.write_text("A reference document about ablations.\n")
    args = [f"out={out}", f"reference={reference}", f"arms.a={tmp_path / 'docs'}"]
    assert refinery(["ablate", *args, f"arms.b={tmp_path / 'nope'}"]) == 2
    assert f"arms.b: documents input not found: {tmp_path / 'nope'}" in capsys.readouterr().err
    assert not (out / "tokenization.json").exists()  # a corrected rerun is not refused
    # nor is one after a mistyped curation= key (OUT recorded it, then the key failed)
    typo = "curation=[tokenize.vocab_sise=512]"
    assert refinery(["ablate", *args, f"arms.b={tmp_path / 'docs'}", typo]) == 2
    assert "unknown config key 'tokenize.vocab_sise'" in capsys.readouterr().err
    assert not (out / "tokenization.json").exists()
    # nor after a tokenizer= that is no tokenizer file (the tokens folder, say)
    assert refinery(["ablate", *args, f"arms.b={tmp_path / 'docs'}", f"tokenizer={tmp_path}"]) == 2
    assert "is a folder, not a tokenizer file" in capsys.readouterr().err
    assert not (out / "tokenization.json").exists()


def test_an_arm_named_twice_is_refused(tmp_path):
    # the later path replaced the earlier, and its arm vanished from the comparison
    overrides = [f"out={tmp_path}", "reference=r", "arms.a=x", "arms.a=y", "arms.b=z"]
    with pytest.raises(ConfigError, match="arms.a given twice: each arm needs a name of its own"):
        ablation.load_ablation_config(None, overrides)


def test_an_empty_arm_is_named(spark, extract_run, tmp_path):
    out, _ = extract_run
    empty = tmp_path / "empty"  # a filter that kept nothing
    spark.read.parquet(f"{out}/extract").limit(0).write.parquet(str(empty))
    for arms in (
        [f"arms.empty={empty}", f"arms.all={out}/extract"],
        [f"arms.all={out}/extract", f"arms.empty={empty}"],
    ):
        overrides = [
            f"out={tmp_path / 'ablation'}",
            "reference=r",
            *arms,
            "curation=[tokenize.vocab_size=512]",
        ]
        cfg = ablation.load_ablation_config("conf/ablate/tiny.yaml", overrides)
        # first, no text to train the tokenizer; later, no documents: neither named the arm
        with pytest.raises(TokenizeError, match=r"^arms\.empty: no non-empty"):
            tokenize_arms(spark, cfg)


def test_a_reference_an_arm_trained_on_is_found(spark, extract_run, tmp_path):
    from jobs.ablate import reference_leaks

    out, _ = extract_run
    texts = spark.read.parquet(f"{out}/extract").select("text").limit(20).toPandas()["text"]
    leaked = tmp_path / "leaked.jsonl"  # the arm's own pages, as the reference
    leaked.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    held_out = write_reference_articles(tmp_path, count=5)
    arms = [f"arms.all={out}/extract", f"arms.other={tmp_path / 'other'}"]
    spark.createDataFrame([], spark.read.parquet(f"{out}/extract").schema).write.parquet(
        str(tmp_path / "other")
    )
    for reference, expected in ((leaked, ["all"]), (held_out, [])):
        overrides = [f"out={tmp_path / 'ablation'}", f"reference={reference}", *arms]
        cfg = ablation.load_ablation_config("conf/ablate/tiny.yaml", overrides)
        assert sorted(reference_leaks(spark, cfg)) == expected
