"""Part files the Python tasks write themselves, finished by the driver."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.spark.task_parquet import PartsNotFound, TaskParquet, finish_folders

SCHEMAS = {"kept": pa.schema([("id", pa.string())]), "errors": pa.schema([("error", pa.string())])}


def test_finished_folders_hold_the_rows_or_an_empty_part_with_the_schema(tmp_path):
    parts = TaskParquet(str(tmp_path), 3, SCHEMAS, 10)
    parts.add_table("kept", pa.table({"id": ["a", "b"]}))
    parts.close()
    finish_folders(str(tmp_path), SCHEMAS, {"kept": 2, "errors": 0})
    assert pq.read_table(tmp_path / "kept")["id"].to_pylist() == ["a", "b"]
    assert pq.read_table(tmp_path / "errors").schema == SCHEMAS["errors"]
    assert (tmp_path / "kept" / "_SUCCESS").exists() and (tmp_path / "errors" / "_SUCCESS").exists()


def test_rows_the_driver_cannot_see_are_refused_not_marked_complete(tmp_path):
    """OUT on each node's own disk: the executors' parts are not where the driver looks."""
    with pytest.raises(PartsNotFound, match=r"kept: the tasks wrote 64 rows there, and the driver"):
        finish_folders(str(tmp_path), SCHEMAS, {"kept": 64, "errors": 0})
    assert not (tmp_path / "kept" / "_SUCCESS").exists()
