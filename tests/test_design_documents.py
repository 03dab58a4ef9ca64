"""DESIGN.md: any stage runs alone on any documents Parquet that has its seven columns (and
cleans up after attempts at it that were killed)."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.config import load_curation_config
from curation.spark.stage import REQUIRED_COLUMNS, stage_path
from jobs.dedup import run_dedup
from jobs.filter import run_filter
from jobs.mix import run_mix
from jobs.tokenize import run_tokenize
from refinery.config import to_dict
from refinery.manifest import read_manifest


@pytest.fixture(scope="module")
def design_documents(extract_run, tmp_path_factory) -> tuple[str, int]:
    """The extract stage's documents with DESIGN's required columns only (no `offset`)."""
    out, _ = extract_run
    table = pq.read_table(stage_path(out, "extract"), columns=list(REQUIRED_COLUMNS))
    folder = tmp_path_factory.mktemp("design") / "docs"
    folder.mkdir()
    pq.write_table(table, folder / "part-0.parquet")
    return str(folder), table.num_rows


def rows(path: Path) -> int:
    return pq.read_table(path).num_rows if path.exists() else 0


@pytest.mark.parametrize("run", [run_filter, run_dedup, run_mix, run_tokenize])
def test_each_stage_runs_alone_on_design_columns(spark, design_documents, tmp_path, run):
    docs, count = design_documents
    stage = run.__name__.removeprefix("run_")
    # what killed attempts left: this stage's goes once it commits, another stage's stays
    for name in (f"{stage}-killed0123", "other-killed4567"):
        (tmp_path / "_tmp" / name).mkdir(parents=True)
        (tmp_path / "_tmp" / name / "part-0.parquet").write_bytes(b"partial")
    overrides = ["tokenize.vocab_size=600", "tokenize.validation_share=0.2"]
    stats = run(spark, load_curation_config(overrides=overrides), [docs], str(tmp_path))
    assert [p.name for p in (tmp_path / "_tmp").iterdir()] == ["other-killed4567"]
    assert (
        stats["input"] == count == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    )
    if stage == "tokenize":
        assert read_manifest(tmp_path / "tokens").validation.documents > 0
    else:
        assert rows(tmp_path / stage) == stats["kept"]
        part = next((tmp_path / stage).glob("*.parquet"))
        assert pq.read_schema(part).field("fetch_time").type == pa.timestamp("us", tz="UTC")
        assert rows(tmp_path / "rejected" / f"stage={stage}") == sum(stats["rejected"].values())
        # the README's way to read every stage's rejected rows with pandas
        rejected = pd.read_parquet(tmp_path / "rejected", partitioning=None)
        assert len(rejected) == sum(stats["rejected"].values())
        assert set(rejected["stage"]) <= {stage}


@pytest.mark.parametrize("files_on_the_driver", [True, False])
def test_a_documents_folder_with_a_file_spark_cannot_read_is_named(
    spark, design_documents, tmp_path, files_on_the_driver
):
    """A stray file, or pandas' default nanosecond timestamps, fail in one line naming the
    file, before any stage work (they failed in a task, with a JVM traceback)."""
    from curation.inputs import InputError
    from curation.spark.row_groups import DISCOVERY_THRESHOLD, row_group_slices
    from curation.spark.stage import read_documents

    docs, _ = design_documents
    table = pq.read_table(docs)
    folder = tmp_path / "docs"
    folder.mkdir()
    pq.write_table(table, folder / "part-0.parquet")
    (folder / "part-x.json").write_text("{}")
    before = spark.conf.get(DISCOVERY_THRESHOLD)
    spark.conf.set(DISCOVERY_THRESHOLD, "32" if files_on_the_driver else "1")
    try:
        with pytest.raises(InputError, match=r"part-x.json: cannot read it as Parquet"):
            read_documents(spark, [str(folder)])
        # The filter and tokenize stages leave the footers to row_group_slices (one read each).
        files = read_documents(spark, [str(folder)], footers=False).inputFiles()
        with pytest.raises(InputError, match=r"part-x.json: cannot read it as Parquet"):
            row_group_slices(spark, files)
        (folder / "part-x.json").unlink()
        frame = table.to_pandas()
        frame["fetch_time"] = frame["fetch_time"].astype("datetime64[ns, UTC]")  # pandas' default
        frame.to_parquet(folder / "part-1.parquet")
        with pytest.raises(InputError, match=r"part-1.parquet: fetch_time holds nanosecond"):
            read_documents(spark, [str(folder / "part-1.parquet"), str(folder / "part-0.parquet")])
        with pytest.raises(InputError, match=r"part-1.parquet: fetch_time holds nanosecond"):
            row_group_slices(
                spark, [str(folder / "part-1.parquet"), str(folder / "part-0.parquet")]
            )
        with pytest.raises(InputError, match=r"coerce_timestamps='us'"):  # Spark's own schema read
            read_documents(spark, [str(folder / "part-1.parquet")])
        cut = folder / "a cut.parquet"  # alone: Spark reads its footer for the schema
        cut.write_bytes((folder / "part-0.parquet").read_bytes()[:-100])
        with pytest.raises(InputError, match=r"/a cut.parquet: cannot read it as Parquet \(its"):
            read_documents(spark, [str(cut)])
    finally:
        spark.conf.set(DISCOVERY_THRESHOLD, before)


def damaged_page(path) -> None:
    """A documents Parquet whose footer reads well and whose first data pages do not."""
    import random

    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghij", k=8)) for _ in range(3000)]
    table = pa.table({"id": [str(i) for i in range(3000)], "text": words})
    pq.write_table(table, path, compression="snappy")
    data = bytearray(path.read_bytes())
    data[200:1200] = bytes(1000)
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.num_rows == 3000


def test_a_damaged_data_page_is_named_by_its_file(spark, tmp_path):
    """A page read in a job (its footer was read well before any work): pyarrow's tasks and
    Spark's reader both end in one line naming the file, not a traceback."""
    from curation.inputs import InputError
    from curation.spark.row_groups import read_batches
    from refinery.errors import user_message

    path = tmp_path / "docs" / "part-0.parquet"
    path.parent.mkdir()
    damaged_page(path)
    with pytest.raises(InputError, match=r"part-0.parquet: row group 0: cannot read it: OSError"):
        list(read_batches([(str(path), 0, 0, 3000)], 1024))
    with pytest.raises(Exception) as failed:
        spark.read.parquet(str(path.parent)).select("id").collect()
    message = user_message(failed.value)
    assert message and message.startswith(f"file://{path}: cannot read it as Parquet, it is dam")


def test_a_stage_reads_documents_that_carry_its_own_or_outcome_columns(
    spark, design_documents, tmp_path, capsys
):
    """Mixed documents mixed again (other targets), rejected rows read back as documents:
    the stage's own column and the outcome columns are replaced, not a Spark traceback."""
    from curation.spark.stage import read_documents

    docs, count = design_documents
    config = load_curation_config()
    run_mix(spark, config, [docs], str(tmp_path / "first"))
    again = run_mix(spark, config, [stage_path(str(tmp_path / "first"), "mix")], str(tmp_path))
    assert again["input"] == count and again["kept"] == count
    table = pq.read_table(docs)
    for name in ("reason", "stage", "kept_id"):
        table = table.append_column(name, pa.array(["x"] * table.num_rows))
    rejected = tmp_path / "rejected-as-input"
    rejected.mkdir()
    pq.write_table(table, rejected / "part-0.parquet")
    capsys.readouterr()
    read = read_documents(spark, [str(rejected)])
    assert not {"reason", "stage", "kept_id"} & set(read.columns)
    assert "the columns ['reason', 'stage', 'kept_id'] are left out" in capsys.readouterr().out


def test_a_commit_records_the_stage_before_its_success_marker_appears(spark, tmp_path):
    """Killed between the two, the stage is redone (no _SUCCESS) and run.json's newer time
    redoes the stages after it; _SUCCESS goes first when a finished stage is replaced."""
    from curation.spark import stage as stage_module
    from curation.spark.fs import HadoopFS

    class Recording(HadoopFS):
        def __init__(self, spark):
            super().__init__(spark)
            self.calls = []

        def delete(self, path):
            self.calls.append(("delete", path.removeprefix(str(tmp_path))))
            super().delete(path)

        def rename(self, src, dst):
            self.calls.append(("rename", dst.removeprefix(str(tmp_path))))
            super().rename(src, dst)

        def write_json(self, path, data):
            self.calls.append(("write", path.removeprefix(str(tmp_path))))
            super().write_json(path, data)

    out = str(tmp_path)
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "_SUCCESS").touch()
    for part in ("kept", "rejected", "errors"):
        (tmp_path / "_tmp" / "mix-0" / part).mkdir(parents=True)
    fs = Recording(spark)
    stats = {"input": 0, "kept": 0, "rejected": {}, "errors": 0, "seconds": 0.0}
    config = to_dict(
        load_curation_config(overrides=["spark.conf.spark.sql.shuffle.partitions=2000"])
    )
    stage_module._commit(fs, out, config, "mix", f"{out}/_tmp/mix-0", stats)
    steps = [("delete", "/mix/_SUCCESS"), ("write", "/run.json"), ("rename", "/mix")]
    assert [call for call in fs.calls if call in steps] == steps
    run = stage_module.HadoopFS(spark).read_json(f"{out}/run.json")
    assert (tmp_path / "mix").is_dir() and "mix" in run["stages"]
    # what the session ran with, not the config's 2000 (spark-submit's --conf would win too)
    ran = run["spark_in_effect"]
    assert ran["spark.sql.shuffle.partitions"] == spark.conf.get("spark.sql.shuffle.partitions")
    assert ran["spark.sql.shuffle.partitions"] != "2000"
    assert ran["spark.master"] == spark.conf.get("spark.master")
