"""Parquet part files written by the Python tasks themselves.

For the extract stage, the rows cost more to hand over than to write. Through the JVM each row
would cross from Python as Arrow, be cached, be written by three Spark jobs and be counted by
a fourth, and on two cores that cost 15-20% of trafilatura's own time (docs/BENCHMARKS.md).
Instead each task writes its own part files through pyarrow's filesystem layer (local paths,
HDFS, and S3; pyarrow knows s3a:// as s3://) and returns only its counts.

Each attempt at a task names its part files after itself (`part-<task>-<attempt>.parquet`)
and reports its attempt with its counts. The driver keeps only the files of the attempts whose
reports it took (one per task) and deletes the others: a retried task's earlier attempt, a
speculative copy, an attempt that wrote its files but died before reporting. It sweeps again
once the stage is committed (renamed where no attempt writes), for a copy Spark was still
killing. So the files hold exactly the rows the stats count, even where two attempts differ
(an extraction timeout). On a local filesystem or HDFS each part file appears whole, by rename
from a hidden temp file, so a copy killed mid-write leaves nothing a reader takes for data.
Object stores (S3, GCS, Azure) make an upload visible only when it completes, and a rename
there is a copy: the part is written under its own name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from refinery.errors import RefineryError

SUCCESS = "_SUCCESS"
OBJECT_STORES = tuple(
    getattr(pafs, name)
    for name in ("S3FileSystem", "GcsFileSystem", "AzureFileSystem")
    if hasattr(pafs, name)  # pyarrow may be built without one
)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a folder given as a path or URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), unquote(parsed.path) if parsed.scheme else uri
    if parsed.scheme == "s3a":  # Hadoop's name for S3; pyarrow knows the same store as s3://
        uri = "s3" + uri[len("s3a") :]
    # Spark's URIs escape `#`, `%` and spaces but leave non-ASCII characters, which Arrow's
    # URI parser refuses: they are escaped too (Arrow unescapes the path it returns).
    return pafs.FileSystem.from_uri("".join(c if c.isascii() else quote(c) for c in uri))


def part_name(task: int, attempt: str) -> str:
    return f"part-{task:05d}-{attempt}.parquet"


def _attempt_of(name: str) -> str | None:
    """The attempt in a part file's name; None for another file (_SUCCESS, a temp file)."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    return name[: -len(".parquet")].rsplit("-", 1)[-1]


class TaskParquet:
    """One task's part file in each of several folders (`schemas`: folder name -> schema),
    filled with rows or Arrow tables, a row group every `batch_rows` rows; files without rows
    are not made. The task reports `attempt` with its counts (`finish_folders`)."""

    def __init__(self, root: str, task: int, schemas: dict[str, pa.Schema], batch_rows: int):
        self.fs, self.root = filesystem(root)
        self.task, self.schemas, self.batch_rows = task, schemas, batch_rows
        self.renames = not isinstance(self.fs, OBJECT_STORES)
        self.attempt = uuid.uuid4().hex[:16]
        self._rows: dict[str, list[dict]] = {name: [] for name in schemas}
        self._tables: dict[str, list[pa.Table]] = {name: [] for name in schemas}
        self._buffered: dict[str, int] = dict.fromkeys(schemas, 0)
        self._writers: dict[str, pq.ParquetWriter] = {}

    def add(self, folder: str, row: dict) -> None:
        self._rows[folder].append(row)
        self._buffered[folder] += 1
        if self._buffered[folder] >= self.batch_rows:
            self._flush(folder)

    def add_table(self, folder: str, table: pa.Table) -> None:
        """Rows already in Arrow form (cast to the folder's schema), after those added so far."""
        self._tables_from_rows(folder)
        self._tables[folder].append(table.cast(self.schemas[folder]))
        self._buffered[folder] += table.num_rows
        if self._buffered[folder] >= self.batch_rows:
            self._flush(folder)

    def close(self) -> None:
        """Write what is buffered and make every part file visible."""
        for folder in self.schemas:
            self._flush(folder)
        for folder, writer in self._writers.items():
            writer.close()
            if self.renames:
                self.fs.move(self._path(folder, partial=True), self._path(folder))

    def _path(self, folder: str, partial: bool = False) -> str:
        name = part_name(self.task, self.attempt)
        return f"{self.root}/{folder}/{f'.{name}.tmp' if partial else name}"

    def _tables_from_rows(self, folder: str) -> None:
        rows = self._rows[folder]
        if rows:
            self._tables[folder].append(pa.Table.from_pylist(rows, self.schemas[folder]))
            rows.clear()

    def _flush(self, folder: str) -> None:
        self._tables_from_rows(folder)
        if not self._buffered[folder]:
            return
        if folder not in self._writers:
            self.fs.create_dir(f"{self.root}/{folder}", recursive=True)
            path = self._path(folder, partial=self.renames)
            self._writers[folder] = pq.ParquetWriter(path, self.schemas[folder], filesystem=self.fs)
        table = pa.concat_tables(self._tables[folder])
        self._writers[folder].write_table(table, row_group_size=max(table.num_rows, 1))
        self._tables[folder].clear()
        self._buffered[folder] = 0


class PartsNotFound(RefineryError):
    """Rows the tasks wrote that the driver cannot see: OUT is not storage they share."""


EMPTY = "empty"  # the attempt named by the part file a folder no task wrote to gets


def finish_folders(
    root: str, schemas: dict[str, pa.Schema], rows: dict[str, int], attempts: Iterable[str]
) -> None:
    """After every task: keep only the part files of `attempts` (those whose reports the driver
    took), give a folder no task wrote to an empty part file with its schema, so readers still
    see its columns, and mark each folder complete with _SUCCESS, as Spark does.
    `rows`: how many rows the reported attempts wrote to each folder; one the driver finds
    empty is refused (each executor wrote to its own local disk), not marked complete."""
    fs, base = filesystem(root)
    attempts = set(attempts)
    for folder, schema in schemas.items():
        path = f"{base}/{folder}"
        fs.create_dir(path, recursive=True)
        _drop_unreported(fs, path, attempts)
        if not fs.get_file_info(pafs.FileSelector(path)):
            if rows.get(folder):
                raise PartsNotFound(
                    f"{root}/{folder}: the tasks wrote {rows[folder]} rows there, and the driver "
                    "finds no file: OUT must be storage the driver and every executor share "
                    "(HDFS, S3, a mounted filesystem), not a path on each node's own disk"
                )
            empty = f"{path}/{part_name(0, EMPTY)}"
            pq.write_table(schema.empty_table(), empty, filesystem=fs)
        fs.open_output_stream(f"{path}/{SUCCESS}").close()


def drop_unreported(folder: str, attempts: Iterable[str]) -> None:
    """Delete the part files in `folder` (a path or URI) of attempts other than `attempts`, and
    temp files attempts left unfinished. Run again once the folder is committed (renamed out
    of the attempts' reach): a copy Spark was killing may have finished in between."""
    _drop_unreported(*filesystem(folder), attempts)


def _drop_unreported(fs: pafs.FileSystem, path: str, attempts: Iterable[str]) -> None:
    reported = {*attempts, EMPTY}
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        unfinished = info.base_name.startswith(".part-") and info.base_name.endswith(".tmp")
        attempt = _attempt_of(info.base_name)
        if unfinished or (attempt is not None and attempt not in reported):
            fs.delete_file(info.path)


def sweep_scratch(scratch: str, stages: Iterable[str]) -> None:
    """Delete OUT/_tmp/<stage>-*/ of `stages` (`scratch`: OUT/_tmp as a URI), and OUT/_tmp
    when nothing else is left in it. Run once the session has stopped: a speculative copy
    Spark killed keeps its Python worker writing its partition, and its first write after the
    stage's commit made the stage's scratch folder anew, where nothing would remove it."""
    fs, path = filesystem(scratch)
    prefixes = tuple(f"{stage}-" for stage in stages)
    left = []
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type == pafs.FileType.Directory and info.base_name.startswith(prefixes):
            fs.delete_dir(info.path)
        else:
            left.append(info)
    if not left and fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)
