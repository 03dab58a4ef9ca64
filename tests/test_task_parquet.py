"""Part files the Python tasks write themselves, finished by the driver."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.spark.task_parquet import (
    OBJECT_STORES,
    PartsNotFound,
    TaskParquet,
    finish_folders,
)

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


def test_two_attempts_of_one_task_each_leave_a_whole_part_file(tmp_path):
    """A speculative copy of a task (cluster.yaml turns speculation on) writes the same part
    file on a shared mount: each attempt writes its own temp file, and the part file is one
    of them whole (they shared one temp file, each truncating what the other wrote)."""
    first, second = (TaskParquet(str(tmp_path), 7, SCHEMAS, 2) for _ in range(2))
    for i in range(6):
        first.add("kept", {"id": f"a{i}"})
        second.add("kept", {"id": f"b{i}"})
    first.close()
    second.close()
    (part,) = (tmp_path / "kept").glob("part-*")
    assert pq.read_table(part)["id"].to_pylist() == [f"b{i}" for i in range(6)]
    (tmp_path / "kept" / ".part-00007.parquet.dead.tmp").write_bytes(b"a killed attempt's")
    finish_folders(str(tmp_path), SCHEMAS, {"kept": 6, "errors": 0})
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["_SUCCESS", part.name]


def test_on_hdfs_a_part_file_appears_whole_by_rename(tmp_path, monkeypatch):
    """Any filesystem but an object store (HDFS here stood in for by pyarrow's mock) gets the
    temp file and the rename: a speculative loser killed mid-write after the winner finished
    must not leave the part file cut short."""
    from datetime import datetime

    import pyarrow.fs as pafs

    from curation.spark import task_parquet

    mock = pafs._MockFileSystem(datetime(2026, 1, 1))
    monkeypatch.setattr(task_parquet, "filesystem", lambda uri: (mock, "run"))
    winner, loser = (TaskParquet("hdfs://nn/run", 2, SCHEMAS, 2) for _ in range(2))
    for i in range(4):
        winner.add("kept", {"id": f"w{i}"})
    winner.close()
    for i in range(4):
        loser.add("kept", {"id": f"l{i}"})  # flushed into its own temp file, then killed
    names = [i.base_name for i in mock.get_file_info(pafs.FileSelector("run/kept"))]
    assert sorted(names) == [f".part-00002.parquet.{loser.attempt}.tmp", "part-00002.parquet"]
    assert pq.read_table("run/kept/part-00002.parquet", filesystem=mock)["id"].to_pylist() == [
        f"w{i}" for i in range(4)
    ]
    finish_folders("hdfs://nn/run", SCHEMAS, {"kept": 4, "errors": 0})
    names = [i.base_name for i in mock.get_file_info(pafs.FileSelector("run/kept"))]
    assert sorted(names) == ["_SUCCESS", "part-00002.parquet"]


def test_object_stores_write_the_part_under_its_own_name():
    import pyarrow.fs as pafs

    assert pafs.S3FileSystem in OBJECT_STORES
    assert not issubclass(pafs.LocalFileSystem, OBJECT_STORES)
    assert not issubclass(pafs.HadoopFileSystem, OBJECT_STORES)
