"""Part files the Python tasks write themselves, finished by the driver."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.spark.task_parquet import (
    OBJECT_STORES,
    PartsNotFound,
    TaskParquet,
    drop_unreported,
    filesystem,
    finish_folders,
    sweep_scratch,
)

SCHEMAS = {"kept": pa.schema([("id", pa.string())]), "errors": pa.schema([("error", pa.string())])}


def test_finished_folders_hold_the_rows_or_an_empty_part_with_the_schema(tmp_path):
    parts = TaskParquet(str(tmp_path), 3, SCHEMAS, 10)
    parts.add_table("kept", pa.table({"id": ["a", "b"]}))
    parts.close()
    finish_folders(str(tmp_path), SCHEMAS, {"kept": 2, "errors": 0}, [parts.attempt])
    assert pq.read_table(tmp_path / "kept")["id"].to_pylist() == ["a", "b"]
    assert pq.read_table(tmp_path / "errors").schema == SCHEMAS["errors"]
    assert (tmp_path / "kept" / "_SUCCESS").exists() and (tmp_path / "errors" / "_SUCCESS").exists()


def test_rows_the_driver_cannot_see_are_refused_not_marked_complete(tmp_path):
    """OUT on each node's own disk: the executors' parts are not where the driver looks."""
    with pytest.raises(PartsNotFound, match=r"kept: the tasks wrote 64 rows there, and the driver"):
        finish_folders(str(tmp_path), SCHEMAS, {"kept": 64, "errors": 0}, ["0123"])
    assert not (tmp_path / "kept" / "_SUCCESS").exists()


def _fill(parts: TaskParquet, prefix: str, n: int) -> TaskParquet:
    for i in range(n):
        parts.add("kept", {"id": f"{prefix}{i}"})
    return parts


def test_only_the_reported_attempt_of_a_task_is_kept(tmp_path):
    """Two attempts at task 7 (a retry, or a speculative copy: cluster.yaml turns speculation
    on) that wrote different rows (an extraction timeout in one): the folder holds the rows of
    the attempt whose counts the driver took, whichever finished last, and nothing of the
    other or of a killed attempt's temp file."""
    reported = _fill(TaskParquet(str(tmp_path), 7, SCHEMAS, 2), "a", 6)
    other = _fill(TaskParquet(str(tmp_path), 7, SCHEMAS, 2), "b", 5)
    reported.close()
    other.close()
    _fill(TaskParquet(str(tmp_path), 7, SCHEMAS, 2), "killed", 4)  # flushed, never closed
    assert len(list((tmp_path / "kept").glob("part-00007-*.parquet"))) == 2
    finish_folders(str(tmp_path), SCHEMAS, {"kept": 6, "errors": 0}, [reported.attempt])
    names = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert names == ["_SUCCESS", f"part-00007-{reported.attempt}.parquet"]
    assert pq.read_table(tmp_path / "kept")["id"].to_pylist() == [f"a{i}" for i in range(6)]


def test_a_copy_that_finished_after_the_listing_is_dropped_once_committed(tmp_path):
    """Spark kills the other attempts of a task that succeeded, but a Python worker may run
    on for a moment: one that renamed its part file after finish_folders listed the folder
    is deleted by the sweep after the commit, when no attempt can reach the folder."""
    root = str(tmp_path / "tmp")
    winner = _fill(TaskParquet(root, 1, SCHEMAS, 2), "w", 2)
    winner.close()
    finish_folders(root, SCHEMAS, {"kept": 2, "errors": 0}, [winner.attempt])
    _fill(TaskParquet(root, 1, SCHEMAS, 2), "late", 2).close()
    (tmp_path / "tmp" / "kept").rename(tmp_path / "final")
    drop_unreported(str(tmp_path / "final"), [winner.attempt])
    names = sorted(p.name for p in (tmp_path / "final").iterdir())
    assert names == ["_SUCCESS", f"part-00001-{winner.attempt}.parquet"]
    drop_unreported(f"{root}/errors", [winner.attempt])  # the placeholder of an empty folder
    assert pq.read_table(f"{root}/errors").schema == SCHEMAS["errors"]


def test_on_hdfs_a_part_file_appears_whole_by_rename(tmp_path, monkeypatch):
    """Any filesystem but an object store (HDFS here stood in for by pyarrow's mock) gets the
    temp file and the rename: an attempt killed mid-write leaves only a hidden file."""
    from datetime import datetime

    import pyarrow.fs as pafs

    from curation.spark import task_parquet

    mock = pafs._MockFileSystem(datetime(2026, 1, 1))
    monkeypatch.setattr(task_parquet, "filesystem", lambda uri: (mock, "run"))
    winner = _fill(TaskParquet("hdfs://nn/run", 2, SCHEMAS, 2), "w", 4)
    winner.close()
    loser = _fill(TaskParquet("hdfs://nn/run", 2, SCHEMAS, 2), "l", 4)  # then killed
    names = [i.base_name for i in mock.get_file_info(pafs.FileSelector("run/kept"))]
    assert sorted(names) == [
        f".part-00002-{loser.attempt}.parquet.tmp",
        f"part-00002-{winner.attempt}.parquet",
    ]
    finish_folders("hdfs://nn/run", SCHEMAS, {"kept": 4, "errors": 0}, [winner.attempt])
    names = [i.base_name for i in mock.get_file_info(pafs.FileSelector("run/kept"))]
    assert sorted(names) == ["_SUCCESS", f"part-00002-{winner.attempt}.parquet"]
    table = pq.read_table(f"run/kept/part-00002-{winner.attempt}.parquet", filesystem=mock)
    assert table["id"].to_pylist() == [f"w{i}" for i in range(4)]


def test_object_stores_write_the_part_under_its_own_name():
    import pyarrow.fs as pafs

    assert pafs.S3FileSystem in OBJECT_STORES
    assert not issubclass(pafs.LocalFileSystem, OBJECT_STORES)
    assert not issubclass(pafs.HadoopFileSystem, OBJECT_STORES)


def test_a_uri_names_its_path_unescaped_whatever_its_characters():
    """As Spark lists files: `#`, `%` and spaces escaped, a non-ASCII character as it is,
    which Arrow's URI parser (any scheme but file:) refused."""
    _, path = filesystem("mock:///run%20%231%20%2520\u00e9/part-0.parquet")
    assert path == "run #1 %20\u00e9/part-0.parquet"
    _, local = filesystem("file:///tmp/run%20%231%20%2520\u00e9")
    assert local == "/tmp/run #1 %20\u00e9"
    assert filesystem("/tmp/run #1")[1] == "/tmp/run #1"  # a path is not a URI


def test_sweep_scratch_removes_the_stages_scratch_folders_and_then_the_scratch_folder(tmp_path):
    """A killed speculative copy's worker wrote _tmp/filter-<id>/kept/ anew after the commit."""
    late = tmp_path / "_tmp" / "filter-6b49fa6a8ae1" / "kept"
    late.mkdir(parents=True)
    (late / "part-00000-a98ea55b11e64de3.parquet").write_bytes(b"late")
    (tmp_path / "_tmp" / "dedup-0123456789ab").mkdir()
    sweep_scratch((tmp_path / "_tmp").as_uri(), ["extract", "filter"])
    assert sorted(p.name for p in (tmp_path / "_tmp").iterdir()) == ["dedup-0123456789ab"]
    sweep_scratch((tmp_path / "_tmp").as_uri(), ["dedup"])
    assert not (tmp_path / "_tmp").exists()
    sweep_scratch((tmp_path / "_tmp").as_uri(), ["dedup"])  # nothing there: nothing to do
