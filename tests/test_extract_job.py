"""The extract stage in local Spark: outputs, stats that add up, rerun behaviour, determinism."""

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.config import load_curation_config
from curation.extract import DOCUMENT_FIELDS
from curation.inputs import InputError, resolve_inputs
from jobs.extract import run_extract

from conftest import shared_data


def read_table(path):
    return pq.read_table(path).to_pylist()


def test_outputs_follow_the_run_folder_contract(extract_run):
    out, stats = extract_run
    out = Path(out)
    assert (out / "extract" / "_SUCCESS").exists()
    assert (out / "rejected" / "stage=extract" / "_SUCCESS").exists()
    assert (out / "errors" / "stage=extract" / "_SUCCESS").exists()
    assert json.loads((out / "stats" / "extract.json").read_text()) == stats
    assert not (out / "_tmp").exists()
    kept = pq.read_table(out / "extract")
    assert kept.column_names == list(DOCUMENT_FIELDS)
    assert str(kept.schema.field("fetch_time").type).startswith("timestamp")
    run = json.loads((out / "run.json").read_text())
    assert run["stages"]["extract"]["kept"] == stats["kept"]
    assert len(run["stages"]["extract"]["config_hash"]) == len(run["config_hash"])  # its own
    assert run["config"]["extract"]["timeout_seconds"] == 5.0
    assert run["version"] and "git_sha" in run


def test_stats_add_up_in_total_and_per_file(extract_run, sample_crawl):
    out, stats = extract_run
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    for counts in stats["files"].values():
        assert (
            counts["input"] == counts["kept"] + sum(counts["rejected"].values()) + counts["errors"]
        )
    assert sum(c["input"] for c in stats["files"].values()) == stats["input"]
    kept = read_table(Path(out) / "extract")
    rejected = read_table(Path(out) / "rejected" / "stage=extract")
    errors = read_table(Path(out) / "errors" / "stage=extract")
    assert len(kept) == stats["kept"]
    assert len(rejected) == sum(stats["rejected"].values())
    assert len(errors) == stats["errors"]
    assert all(row["reason"] and row["stage"] == "extract" for row in rejected)
    assert all(row["source"] and row["error"] and row["stage"] == "extract" for row in errors)
    assert list(errors[0]) == ["source", "offset", "stage", "error"]


KEPT_KINDS = {
    "article",
    "duplicate",
    "near_duplicate",
    "foreign",
    "pii",
    "spam",
    "short",
    "listy",
    "blocklisted",
}
REJECTED_KINDS = {
    "non_html": "non_html",
    "redirect": "redirect",
    "not_found": "http_status:404",
    "revisit": "revisit",
}


def test_every_generated_record_is_accounted_for(extract_run, sample_crawl):
    """The generator's ground truth: each record is kept, rejected or an error, as expected."""
    out, stats = extract_run
    expected = json.loads((sample_crawl / "expected.json").read_text())
    outcomes = {}
    for table, outcome in (
        ("extract", "kept"),
        ("rejected/stage=extract", "rejected"),
        ("errors/stage=extract", "error"),
    ):
        for row in read_table(Path(out) / table):
            key = (os.path.basename(row["source"]), row["offset"])
            assert key not in outcomes, f"{key} has two outcomes"
            outcomes[key] = (outcome, row.get("reason"))
    records = [(f["file"], r) for f in expected["files"] for r in f["records"]]
    assert stats["input"] == len(records) == len(outcomes)
    for file, record in records:
        outcome, reason = outcomes[(file, record["offset"])]
        kind = record["kind"].split(":")[0]
        if record["warc_type"] not in ("response", "revisit"):
            assert (outcome, reason) == ("rejected", f"record_type:{record['warc_type']}")
        elif kind in KEPT_KINDS:
            assert outcome == "kept", record
        elif kind in REJECTED_KINDS:
            assert (outcome, reason) == ("rejected", REJECTED_KINDS[kind]), record
        else:
            assert kind == "broken" and outcome == "error", record


def test_documents_have_ids_hosts_and_text(extract_run):
    out, _ = extract_run
    kept = read_table(Path(out) / "extract")
    ids = [row["id"] for row in kept]
    assert len(ids) == len(set(ids))
    for row in kept:
        assert row["text"].strip() and row["url"].startswith("http")
        assert row["host"] == row["host"].lower()
        assert row["warc_type"] == "response" and row["http_status"] == 200


def test_rerun_skips_and_force_redoes_identically(spark, extract_run, sample_crawl, capsys):
    out, stats = extract_run
    config = load_curation_config()
    inputs = resolve_inputs([str(sample_crawl)], "")
    before = read_table(Path(out) / "extract")  # parts in file name order
    assert run_extract(spark, config, inputs, out) is None
    skipped = capsys.readouterr().out
    assert "already done" in skipped and "note" not in skipped
    # other files into the same folder keep the old output, and say so
    assert run_extract(spark, config, list(reversed(inputs)), out) is None  # the same files
    assert "note" not in capsys.readouterr().out
    assert run_extract(spark, config, inputs[:1], out) is None
    assert "extract: note: it ran with other input files (--input)" in capsys.readouterr().out
    run = json.loads((Path(out) / "run.json").read_text())
    assert "inputs" not in run["config"] and run["stages"]["extract"]["inputs"]["count"] == 3
    # the files listed in another order: the same rows in the same order of parts, which a
    # tokenize reading them writes into its shards
    again = run_extract(spark, config, list(reversed(inputs)), out, force=True)
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in stats.items() if k != "seconds"
    }
    assert read_table(Path(out) / "extract") == before


def test_a_run_where_no_input_file_opens_fails_instead_of_passing(spark, sample_crawl, tmp_path):
    """No credentials for s3://, a crawl name mistyped in the prefix: every file is an error
    row, and a stage that passed would be skipped as done on the next run."""
    config = load_curation_config()
    gone = [str(tmp_path / "gone" / f"{n}.warc.gz") for n in range(2)]
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"none of the 2 input files could be opened.*0\.warc"):
        run_extract(spark, config, gone, str(out))
    assert not (out / "extract").exists()
    assert not list(out.glob("_tmp/*"))  # the failed attempt's parts are gone with it
    one = resolve_inputs([str(sample_crawl)], "")[:1]
    stats = run_extract(spark, config, [*one, gone[0]], str(out))
    assert stats["errors"] == 1 and stats["kept"] > 0


def test_shared_real_warcs_run_without_failing_the_job(spark, tmp_path):
    warcs = shared_data("warc")
    config = load_curation_config()
    inputs = sorted(str(p) for p in warcs.rglob("*") if p.is_file())
    stats = run_extract(spark, config, inputs, str(tmp_path / "out"))
    assert len(stats["files"]) == len(inputs)
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    assert stats["kept"] > 100
    malformed = [s for s in stats["files"] if "/malformed/" in s]
    assert sum(stats["files"][s]["errors"] for s in malformed) >= 3
    kept = read_table(tmp_path / "out" / "extract")
    wet = [r for r in kept if r["warc_type"] == "conversion"]
    arc = [r for r in kept if r["source"].endswith(".arc.gz")]
    assert wet and arc


@pytest.mark.parametrize("bad", ["extract.timout_seconds=1", "input.limit=zero"])
def test_cli_config_errors_fail_before_spark(bad, tmp_path, capsys):
    from refinery.cli import main

    assert main(["extract", "--input", str(tmp_path), "--output", str(tmp_path / "o"), bad]) == 2
    assert bad.split("=")[0] in capsys.readouterr().err


@pytest.fixture
def no_spark(monkeypatch):
    """A command that starts Spark fails the test: its checks must come first."""
    import jobs.common
    import jobs.pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("Spark started")

    monkeypatch.setattr(jobs.common, "build_session", refuse)
    monkeypatch.setattr(jobs.pipeline, "build_session", refuse)


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize("command", ["extract", "curate"])
def test_an_output_that_cannot_be_a_run_folder_fails_before_spark(
    command, sample_crawl, tmp_path, capsys, monkeypatch
):
    from refinery.cli import main

    monkeypatch.chdir(tmp_path)  # where file:/// was taken for a folder named "file:"

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out, message in [(afile, "is a file; OUT is a run folder"), (afile / "x", "cannot write")]:
        assert main([command, "--input", str(sample_crawl), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--output {out}" in err and message in err
    (tmp_path / "to-root").symlink_to("/")
    # stages would write /extract, /stats, ...; file://$UNSET/ is file:///
    for root in ("", "/", "file:///", "file://", "file://localhost/", str(tmp_path / "to-root")):
        assert main([command, "--input", str(sample_crawl), "--output", root]) == 2
        assert f"--output {root!r}: name a run folder" in capsys.readouterr().err
    assert not Path("file:").exists()
    stage = tmp_path / "run" / "dedup"  # a stage folder, not the run folder above it
    stage.mkdir(parents=True)
    (stage / "_SUCCESS").touch()
    assert main([command, "--input", str(sample_crawl), "--output", str(stage)]) == 2
    assert "holds a stage's documents (_SUCCESS, part files)" in capsys.readouterr().err
    # not yet written, beside the run's other stage folders: it would nest a run in the run
    nested = tmp_path / "run" / "mix"
    assert main([command, "--input", str(sample_crawl), "--output", str(nested)]) == 2
    assert f"is a stage folder of the run {tmp_path / 'run'} (it holds dedup)" in (
        capsys.readouterr().err
    )
    assert not nested.exists()


@pytest.mark.usefixtures("no_spark")
def test_a_remote_output_for_the_tokenize_stage_fails_before_spark(sample_crawl, capsys):
    """Not after hours of the stages before tokenize, which memory-maps its shards."""
    from refinery.cli import main

    assert main(["curate", "--input", str(sample_crawl), "--output", "s3a://bucket/run"]) == 2
    assert "the tokenize stage writes local files" in capsys.readouterr().err
    skipped = "pipeline.stages=[extract, filter]"
    with pytest.raises(AssertionError, match="Spark started"):  # no tokenize: Hadoop's to check
        main(["curate", "--input", str(sample_crawl), "--output", "s3a://bucket/run", skipped])


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize(
    ("command", "override", "message"),
    [
        ("curate", "tokenize.tokenizer=/nonexistent/tok.json", "tokenize.tokenizer: /nonexistent"),
        ("curate", "filter.blocklist.lists_dir=/nonexistent/ut1", "no category folder"),
        ("curate", "filter.badwords.lists_dir=/nonexistent/words", "no folder"),
        ("curate", "filter.language.model=/nonexistent/lid.bin", "no model file"),
        ("filter", "filter.blocklist.domain_files={adult: [/nonexistent.list]}", "no file"),
        ("tokenize", "tokenize.tokenizer=/nonexistent/tok.json", "tokenize.tokenizer: /nonexi"),
    ],
)
def test_a_missing_file_of_a_later_stage_fails_before_spark(
    command, override, message, sample_crawl, tmp_path, capsys
):
    from refinery.cli import main

    inputs = str(sample_crawl) if command == "curate" else str(tmp_path)
    out = str(tmp_path / "out")
    assert main([command, "--input", inputs, "--output", out, override]) == 2
    err = capsys.readouterr().err
    assert message in err and "/nonexistent" in err


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize("command", ["curate", "classify"])
def test_a_damaged_quality_model_fails_before_spark(command, sample_crawl, tmp_path, capsys):
    from refinery.cli import main

    model = tmp_path / "quality"
    model.mkdir()
    (model / "model.bin").write_bytes(b"not a fastText model")
    inputs = str(sample_crawl) if command == "curate" else str(tmp_path)
    override = f"classify.quality.model={model}"
    assert main([command, "--input", inputs, "--output", str(tmp_path / "out"), override]) == 2
    assert f"{model}: not a quality model" in capsys.readouterr().err
    missing = f"classify.quality.model={tmp_path / 'missing'}"
    assert main([command, "--input", inputs, "--output", str(tmp_path / "out"), missing]) == 2
    assert f"no quality model at {tmp_path / 'missing'}" in capsys.readouterr().err


def test_a_run_folder_given_for_documents_names_its_stage_folders(spark, extract_run):
    from curation.inputs import InputError
    from curation.spark.stage import read_documents

    out, _ = extract_run  # Spark read its stage=... folders as partitions and said basePath
    with pytest.raises(
        InputError, match=rf"{out} is a run folder, not documents: .*\(.*{out}/extract\b"
    ):
        read_documents(spark, [out])


def test_documents_without_required_columns_are_refused(spark, tmp_path):
    from curation.inputs import InputError
    from curation.spark.stage import read_documents

    spark.createDataFrame([("a", "text")], "id string, text string").write.parquet(
        str(tmp_path / "docs")
    )
    with pytest.raises(InputError, match=r"lacks the required columns \['url', 'host'"):
        read_documents(spark, [str(tmp_path / "docs")])
    with pytest.raises(InputError, match="cannot read documents Parquet"):
        read_documents(spark, [str(tmp_path / "missing")])
    columns = "id string, url string, host string, text binary, source string, record_id string"
    spark.createDataFrame(
        [("a", "u", "h", b"t", "s", "r", 5)], f"{columns}, fetch_time int"
    ).write.parquet(str(tmp_path / "typed"))
    with pytest.raises(
        InputError, match=r"text is binary, not string; fetch_time is int, not timestamp"
    ):
        read_documents(spark, [str(tmp_path / "typed")])


def test_ctrl_c_in_a_spark_job_leaves_py4j_s_reentrant_call_unlogged(spark):
    """pyspark's SIGINT handler cancels the jobs through Py4J while the main thread waits in
    a Py4J call; Py4J logged that at ERROR with two tracebacks before the command's line."""
    import logging
    import signal

    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):  # pyspark's handler: cancel, then interrupt
            handler(signal.SIGINT, None)
        assert logging.root.manager.disable == logging.CRITICAL
    finally:
        logging.disable(logging.NOTSET)


def test_a_local_input_written_again_at_another_size_is_other_input(tmp_path):
    """A crawl generated anew under the same names was "already done", without a note."""
    from jobs.extract import input_files

    warc = tmp_path / "a.warc.gz"
    warc.write_bytes(b"x" * 10)
    before = input_files([str(warc), "s3://b/c.warc.gz"])
    assert input_files([f"file://{warc}", "s3://b/c.warc.gz"])["count"] == 2
    warc.write_bytes(b"x" * 10)
    assert input_files([str(warc), "s3://b/c.warc.gz"]) == before  # same size: same files
    warc.write_bytes(b"x" * 15)
    assert input_files([str(warc), "s3://b/c.warc.gz"]) != before
