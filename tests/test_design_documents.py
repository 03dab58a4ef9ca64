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
    finally:
        spark.conf.set(DISCOVERY_THRESHOLD, before)
