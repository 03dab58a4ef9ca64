import re
from pathlib import Path

import pytest

from curation.config import (
    CONF_DIR,
    CurationConfig,
    ignored_note,
    ignored_overrides,
    load_curation_config,
)
from refinery.config import ConfigError, config_hash, load_config, parse_override, to_dict


def test_every_shipped_curation_config_validates():
    for path in sorted(CONF_DIR.glob("*.yaml")):
        assert isinstance(load_curation_config(path), CurationConfig), path


def test_default_yaml_matches_schema_defaults():
    # default.yaml spells out the defaults; drift from the code would mislead users, and a
    # config file of a few sections would run under other settings (a trial's lost
    # session.timeZone, and Spark's progress bars back). Only a laptop's sizes are its own.
    loaded, defaults = to_dict(load_curation_config()), to_dict(CurationConfig())
    laptop = {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"}
    assert loaded["spark"]["conf"] == {**defaults["spark"]["conf"], **laptop}
    loaded["spark"]["conf"] = defaults["spark"]["conf"]
    assert loaded == defaults


def test_an_override_of_one_mapping_entry_joins_the_defaults_a_file_leaves_out(tmp_path):
    few = tmp_path / "few.yaml"
    few.write_text("filter:\n  steps: [pii]\n")
    conf = load_curation_config(few, ["spark.conf.spark.executor.memory=8g"]).spark.conf
    assert conf == {**CurationConfig().spark.conf, "spark.executor.memory": "8g"}
    few.write_text("spark:\n  conf:\n    spark.driver.memory: 4g\n")  # the file's replaces
    conf = load_curation_config(few, ["spark.conf.spark.executor.memory=8g"]).spark.conf
    assert conf == {"spark.driver.memory": "4g", "spark.executor.memory": "8g"}


def test_a_whole_section_override_merges_into_the_files_section(tmp_path):
    """As Hydra merges `schedule={kind: wsd}`: the file's other keys of the section stay."""
    from training.config import TrainConfig

    preset = CONF_DIR.parent / "train" / "gpt2-124m.yaml"
    config = load_config(TrainConfig, preset, ["schedule={kind: wsd}", "train={micro_batch: 8}"])
    file = load_config(TrainConfig, preset)
    assert config.schedule.kind == "wsd" and config.train.micro_batch == 8
    assert config.schedule.warmup_steps == file.schedule.warmup_steps == 700
    assert config.train.eval_tokens == file.train.eval_tokens and config.train.compile
    few = tmp_path / "few.yaml"
    few.write_text("filter:\n  steps: [pii]\n")
    merged = load_curation_config(few, ["filter={c4: {min_sentences: 1}}"]).filter
    assert merged.steps == ["pii"] and merged.c4.min_sentences == 1
    few.write_text("mix:\n  targets: {news: 0.6, science: 0.4}\n  max_epochs: 2.5\n")
    mix = load_curation_config(few, ["mix={targets: {news: 1.0}}"]).mix
    assert mix.targets == {"news": 1.0} and mix.max_epochs == 2.5  # a mapping setting replaced


def test_overrides_apply_with_yaml_types():
    config = load_curation_config(
        overrides=["extract.timeout_seconds=2", "input.limit=3", "spark.conf.spark.x=1"]
    )
    assert config.extract.timeout_seconds == 2.0
    assert isinstance(config.extract.timeout_seconds, float)
    assert config.input.limit == 3
    assert config.spark.conf["spark.x"] == "1"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "extract.timout_seconds=2",
            "unknown config key 'extract.timout_seconds' (did you mean 'extract.timeout_seconds'?)",
        ),
        ("extract.timeout_seconds=fast", "extract.timeout_seconds: expected float, got str 'fast'"),
        ("extract.trafilatura.fast=3", "extract.trafilatura.fast: expected bool, got int 3"),
        ("pipeline.stages=[extract, nope]", "pipeline.stages[1]: must be one of"),
        ("pipeline.stages=[dedup, extract]", "pipeline.stages must be distinct and in the order"),
        ("pipeline.stages=[]", "pipeline.stages must name at least one stage"),
        ("extract.timeout_seconds=0", "extract.timeout_seconds must be positive"),
        (
            "extract.timeout_seconds=nan",
            "must be a finite number, got 'nan'",
        ),
        (
            "extract.timeout_seconds=.inf",
            "timeout_seconds: must be a finite number, got inf",
        ),
        ("extract.timeout_seconds=-Infinity", "must be a finite number, got '-Infinity'"),
        ("input.limit=-1", "input.limit must be positive"),
        ("dedup.minhash.seed=-1", "dedup.minhash.seed must be in 0 .. 2^32 - 1, got -1"),
        ("classify.domains.seed=4294967296", "classify.domains.seed must be in 0 .. 2^32 - 1"),
        ("classify.domains.min_confidence=2", "min_confidence must be in [0, 1], got 2.0"),
        ("classify.domains.sample_per_label=0", "sample_per_label must be > 0, got 0"),
        ("extract.min_text_chars=-5", "extract.min_text_chars must be >= 0, got -5"),
        ("extract=3", "extract: expected a mapping"),
        ("noequals", "not of the form key=value"),
    ],
)
def test_bad_keys_and_types_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_curation_config(overrides=[override])
    assert message in str(err.value)


def test_bad_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_curation_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a folder: name a .yaml file in it"):
        load_curation_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("extract: [1, 2\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml:2:1 is not valid YAML: expected ',' or ']'"
    ) as err:
        load_curation_config(bad)
    assert "\n" not in str(err.value)  # one line, where and what
    typo = tmp_path / "typo.yaml"
    typo.write_text("extract:\n  max_html_byte: 5\n")
    with pytest.raises(ConfigError, match=r"extract.max_html_byte.*\(in .*typo.yaml\)"):
        load_curation_config(typo)


def test_parse_override_reads_yaml_scalars():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a=[x, y]") == ("a", ["x", "y"])
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=s3a://bucket/x") == ("a", "s3a://bucket/x")


def test_config_hash_is_stable_and_sensitive():
    a, b = load_curation_config(), load_curation_config()
    assert config_hash(a) == config_hash(b) == config_hash(to_dict(a))
    assert config_hash(load_curation_config(overrides=["input.limit=2"])) != config_hash(a)


def test_text_overrides_keep_the_text_as_typed(tmp_path: Path):
    from refinery.config import load_config
    from training.config import TrainConfig

    typed = ["out=runs/x #2", "data=001", "loader.mixture=1.10"]
    config = load_config(TrainConfig, None, typed)
    assert (config.out, config.data, config.loader.mixture) == ("runs/x #2", "001", "1.10")
    curation = load_curation_config(
        overrides=["tokenize.tokenizer=0.50", "spark.conf.spark.sql.shuffle.partitions=010"]
    )
    assert curation.tokenize.tokenizer == "0.50"
    assert curation.spark.conf["spark.sql.shuffle.partitions"] == "010"
    quoted = load_curation_config(overrides=['spark.conf.spark.x="false"', "spark.conf.y='a #b'"])
    assert quoted.spark.conf["spark.x"] == "false" and quoted.spark.conf["y"] == "a #b"
    assert load_curation_config(overrides=["tokenize.tokenizer=null"]).tokenize.tokenizer is None


def test_numbers_read_as_yaml_1_2_and_spark_booleans_as_text(tmp_path: Path):
    with pytest.raises(ConfigError, match="expected int, got str '010'"):
        load_curation_config(overrides=["input.limit=010"])  # not octal 8
    with pytest.raises(ConfigError, match="expected int, got str '1:00'"):
        load_curation_config(overrides=["input.limit=1:00"])  # not base-60
    assert load_curation_config(overrides=["input.limit=1e3"]).input.limit == 1000
    with pytest.raises(ConfigError, match="must be a finite number, got inf"):
        load_curation_config(overrides=["extract.timeout_seconds=1e400"])
    spark = load_curation_config(overrides=["spark.conf.spark.speculation=true"]).spark
    assert spark.conf["spark.speculation"] == "true"
    plain = tmp_path / "plain.yaml"
    plain.write_text("tokenize:\n  tokenizer: 001\nspark:\n  conf:\n    spark.speculation: false\n")
    config = load_curation_config(plain)
    assert config.tokenize.tokenizer == "001" and config.spark.conf["spark.speculation"] == "false"


def test_an_optional_mapping_takes_dotted_entries():
    from refinery.config import apply_overrides

    config = load_curation_config(overrides=["mix.targets.news=0.5"])
    assert config.mix.targets == {"news": 0.5}
    raw = apply_overrides(CurationConfig, {"mix": {"targets": None}}, ["mix.targets.web.x=0.25"])
    assert raw == {"mix": {"targets": {"web.x": 0.25}}}  # a dotted bucket label is one entry


def read_written(folder: Path, name: str, text: str) -> dict:
    """`text` read as the config file `folder/name`."""
    from refinery.config import read_yaml

    (folder / name).write_text(text)
    return read_yaml(folder / name)


def test_a_yaml_merge_key_merges_and_the_mapping_s_own_keys_win(tmp_path: Path):
    """`<<: *base` failed as "could not determine a constructor" (the repeated-key check
    constructed the merge key)."""
    base = "base: &base {min_text_chars: 5, max_html_bytes: 9}\n"
    merged = read_written(
        tmp_path, "merged.yaml", f"{base}extract:\n  <<: *base\n  min_text_chars: 7\n"
    )
    assert merged["extract"] == {"min_text_chars": 7, "max_html_bytes": 9}
    twice = f"{base}extract:\n  <<: *base\n  min_text_chars: 7\n  min_text_chars: 8\n"
    with pytest.raises(ConfigError, match="repeats the key 'min_text_chars'"):
        read_written(tmp_path, "twice.yaml", twice)
    # a merged mapping repeating a key is refused too; of several merged, the first wins
    inline = "extract:\n  <<: {min_text_chars: 5, min_text_chars: 50}\n"
    with pytest.raises(ConfigError, match="repeats the key 'min_text_chars'"):
        read_written(tmp_path, "inline.yaml", inline)
    first = "a: &a {min_text_chars: 5}\nb: &b {min_text_chars: 6, max_html_bytes: 9}\n"
    several = read_written(tmp_path, "several.yaml", f"{first}extract:\n  <<: [*a, *b]\n")
    assert several["extract"] == {"min_text_chars": 5, "max_html_bytes": 9}
    assert several["b"] == {"min_text_chars": 6, "max_html_bytes": 9}
    # a mapping that merges itself is itself (it recursed without end); a mapping as a key
    # is said in one line (a bare TypeError)
    itself = read_written(tmp_path, "itself.yaml", "spark: &a\n  master: local[1]\n  <<: *a\n")
    assert itself == {"spark": {"master": "local[1]"}}
    with pytest.raises(ConfigError, match="keyed.yaml:1:3 is not valid YAML: a key that is a"):
        read_written(tmp_path, "keyed.yaml", "? {a: 1}\n: x\n")


def test_a_config_that_is_a_pipe_is_not_said_to_be_missing(tmp_path: Path):
    """`--config <(printf ...)` was "config file not found: /dev/fd/63"."""
    import os

    from refinery.config import read_yaml

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=r"pipe is not a file \(a pipe\?\): name a .yaml file"):
        read_yaml(pipe)
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path / "gone.yaml")


@pytest.mark.parametrize("master", ["locl[2]", "local[0]", "local[two]", "spark:/h:7077", ""])
def test_a_spark_master_spark_cannot_read_is_refused_with_the_config(master):
    """It failed after OUT was locked, in a Java stack trace from the session start."""
    with pytest.raises(ConfigError, match=f"spark.master '{re.escape(master)}' is no Spark master"):
        load_curation_config(overrides=[f"spark.master={master}"])


@pytest.mark.parametrize(
    "master",
    ["local", "local[3]", "local[*]", "local[4,2]", "local-cluster[2,1,1024]", "yarn"]
    + ["local[1, 2]", "local[*, 4]", "local[01]", "local[1,0]", "local-cluster[2 , 1, 1024]"]
    + ["spark://127.0.0.1:7077", "spark://a:7077,b:7077", "k8s://https://h:443"],
)
def test_every_master_spark_reads_is_taken(master):
    assert load_curation_config(overrides=[f"spark.master={master}"]).spark.master == master


def test_a_file_repeating_a_key_or_not_in_utf8_is_refused(tmp_path: Path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("extract:\n  min_text_chars: 5\nextract:\n  max_html_bytes: 9\n")
    with pytest.raises(ConfigError, match=r"twice.yaml:3:1 is not valid YAML: repeats the key"):
        load_curation_config(twice)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"# caf\xe9\nextract:\n  min_text_chars: 5\n")
    with pytest.raises(ConfigError, match=r"latin.yaml: line 1: byte b'\\xe9' is not UTF-8"):
        load_curation_config(latin)


def test_a_local_path_may_be_given_as_a_file_uri():
    from refinery.config import local_path

    for spec in ("/x/y", "file:///x/y", "file:/x/y", "file://localhost/x/y"):
        assert local_path(spec) == "/x/y", spec
    assert local_path("runs/demo") == "runs/demo"
    assert local_path("s3a://bucket/x") == "s3a://bucket/x"


def test_a_tokenizer_given_as_a_file_uri_is_read_from_its_path(monkeypatch, tmp_path):
    """It was "tokenizer file not found" though the file was there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    overrides = ["tokenize.tokenizer=file:///t/tokenizer.json"]
    assert load_curation_config(overrides=overrides).tokenize.tokenizer == "/t/tokenizer.json"
    overrides = ["tokenize.tokenizer=~/tokenizer.json"]
    tokenizer = load_curation_config(overrides=overrides).tokenize.tokenizer
    assert tokenizer == str(tmp_path / "tokenizer.json")


def test_a_stage_run_alone_names_the_other_sections_it_ignores():
    assert ignored_overrides("extract", ["input.limit=2", "extract.fast=true"]) == []
    assert ignored_overrides("mix", ["classify.domains.fallback=web", "mix.max_epochs=3"]) == []
    assert ignored_overrides("filter", ["spark.master=local[1]"]) == []
    # as deep as the command reads: mix reads classify.domains, not classify.quality
    domains = ["classify={domains: {fallback: web}}", "classify.quality.threshold=0.9"]
    assert ignored_overrides("mix", domains) == ["classify.quality"]
    assert ignored_overrides("mix", ["classify={quality: {threshold: 0.9}}"]) == [
        "classify.quality"
    ]
    assert ignored_overrides("tokenize", ["tokenize = {seed: 3}", " tokenize.seed=1"]) == []
    given = ["tokenize.vocab_size=4096", "pipeline.stages=[mix]", "tokenize.seed=2"]
    assert ignored_overrides("extract", given) == ["pipeline", "tokenize"]
    assert ignored_overrides("train-tokenizer", ["tokenize.vocab_size=4096"]) == []
    assert ignored_overrides("contamination", ["filter.steps=[pii]"]) == ["filter"]
    note = ignored_note("extract", given)
    assert note.startswith("extract: the pipeline.*, tokenize.* settings are ignored")
    assert ignored_note("tokenize", ["tokenize.seed=1"]) is None


def test_a_stage_command_says_which_overrides_it_ignores(tmp_path, capsys):
    from jobs import classify

    documents = tmp_path / "docs"
    documents.mkdir()
    argv = ["--input", str(documents), "--output", str(tmp_path / "run"), "mix.max_epochs=2"]
    assert classify.main([*argv, "classify.quality.threshold=0.5"]) == 0  # skipped: no model
    captured = capsys.readouterr()
    assert "classify: skipped, no quality model configured" in captured.out
    assert "classify: the mix.* settings are ignored" in captured.err
