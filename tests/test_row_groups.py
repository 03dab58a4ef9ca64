"""Planning tasks over a documents Parquet's row groups, and opening the files they read."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from curation.inputs import InputError
from curation.spark.row_groups import (
    check_utf8,
    contiguous_slices,
    open_parquet,
    read_batches,
    row_group_slices,
    row_slices,
)


@given(st.lists(st.integers(0, 1000), max_size=60), st.integers(1, 12))
def test_row_groups_are_cut_into_contiguous_runs_that_cover_them(sizes, parts):
    runs = contiguous_slices(sizes, parts)
    assert [i for run in runs for i in run] == list(range(len(sizes)))
    assert len(runs) <= parts and all(runs)


def test_runs_have_about_equal_bytes():
    runs = contiguous_slices([10] * 100, 8)
    assert len(runs) == 8 and {len(run) for run in runs} <= {12, 13}
    # One big item gets a run of its own; the small ones share the rest.
    assert contiguous_slices([100, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4]]


def test_paths_and_file_uris_open_and_other_files_are_named(tmp_path):
    path = tmp_path / "a b.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    assert open_parquet(str(path)).metadata.num_rows == 2
    assert open_parquet(path.as_uri()).metadata.num_rows == 2  # file:///…/a%20b.parquet
    (tmp_path / "notes.txt").write_text("not parquet")
    with pytest.raises(InputError, match=r"notes.txt: cannot read it as Parquet"):
        open_parquet(str(tmp_path / "notes.txt"))


def test_without_a_count_there_is_a_run_per_core_at_least(spark, tmp_path):
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"part-{i}.parquet"))
        pq.write_table(pa.table({"x": list(range(40))}), files[-1], row_group_size=10)
    runs = row_group_slices(spark, files)
    cores = spark.sparkContext.defaultParallelism
    assert len(runs) == min(cores, 12)  # 12 small row groups: maxPartitionBytes never binds
    assert [piece for run in runs for piece in run] == [
        (f, i, 0, 10) for f in files for i in range(4)
    ]
    assert len(row_group_slices(spark, files, 5)) == 5


def write_rows(folder, rows: int, files: int, group: int) -> list[str]:
    """`rows` numbered rows in `files` Parquet files of row groups of `group` rows."""
    folder.mkdir()
    paths, start = [], 0
    for k in range(files):
        end = rows * (k + 1) // files
        paths.append(str(folder / f"part-{k}.parquet"))
        pq.write_table(pa.table({"x": list(range(start, end))}), paths[-1], row_group_size=group)
        start = end
    return paths


def read_runs(runs) -> list[list[int]]:
    return [[x for _, b in read_batches(run, 7) for x in b.column("x").to_pylist()] for run in runs]


def test_row_slices_cut_the_rows_the_same_whatever_the_files_and_row_groups(spark, tmp_path):
    one = read_runs(row_slices(spark, write_rows(tmp_path / "a", 103, 1, 1000), 4))
    assert one == [
        list(range(0, 25)),
        list(range(25, 51)),
        list(range(51, 77)),
        list(range(77, 103)),
    ]
    for files, group in ((3, 10), (5, 7), (2, 1)):
        layout = write_rows(tmp_path / f"f{files}-{group}", 103, files, group)
        assert read_runs(row_slices(spark, layout, 4)) == one, (files, group)
    few = read_runs(row_slices(spark, write_rows(tmp_path / "few", 2, 2, 1), 4))
    assert few == [[0], [1]]  # no empty runs


def test_a_files_row_groups_are_read_through_one_open(tmp_path, monkeypatch):
    """Each row group reopened the file and parsed its footer again: time grew with the
    square of its row groups."""
    import curation.spark.row_groups as row_groups

    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"x": list(range(50))}), path, row_group_size=5)
    opened = []
    monkeypatch.setattr(
        row_groups, "open_parquet", lambda uri: opened.append(uri) or pq.ParquetFile(uri)
    )
    pieces = [(str(path), index, 0, 5) for index in range(10)]
    rows = [x for _, batch in read_batches(pieces, 3) for x in batch.column("x").to_pylist()]
    assert rows == list(range(50)) and opened == [str(path)]


def test_strings_that_are_not_utf8_are_named_by_file_and_row_group(tmp_path):
    """A writer that does not check UTF-8 (Arrow built from raw buffers) left bytes that
    failed deep inside tokenize's and filter's tasks: a 180-line traceback, no file named."""
    raw = pa.array([b"fine", b"bad byte \xff here"], pa.binary())
    text = pa.Array.from_buffers(pa.string(), 2, raw.buffers())  # not validated
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": text}), path)
    with pytest.raises(InputError, match=rf"{path}: row group 0: row 1: column text is not UTF-8"):
        list(read_batches([(str(path), 0, 0, 2)], 10))
    # in a row group read in batches from a piece's middle: its row in the row group
    rows = [b"ok"] * 10
    rows[7] = b"bad \xff"
    raw = pa.array(rows, pa.binary())
    ten = pa.Array.from_buffers(pa.string(), 10, raw.buffers())
    pq.write_table(pa.table({"text": ten}), tmp_path / "ten.parquet")
    for piece, batch_rows in (
        ((str(tmp_path / "ten.parquet"), 0, 0, 10), 3),
        ((str(tmp_path / "ten.parquet"), 0, 5, 10), 10),
    ):
        with pytest.raises(InputError, match=r": row group 0: row 7: column text"):
            list(read_batches([piece], batch_rows))
    # read by Spark's JVM instead (dedup, classify, contamination): the document is named
    ids = pa.array(["a", "b"])
    with pytest.raises(InputError, match=r"^dedup: document 'b': column text is not UTF-8"):
        check_utf8(pa.record_batch({"id": ids, "text": text}), "dedup")
    # an id no better than the text: the row, not a decoding error of the id
    with pytest.raises(InputError, match=r"^dedup: row 1: column text is not UTF-8"):
        check_utf8(pa.record_batch({"text": text, "id": text}), "dedup")
