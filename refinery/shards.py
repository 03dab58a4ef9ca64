"""Token shard format shared by the tokenize stage (writer) and the trainer (reader).

`shard-NNNNN.bin`: a 64-byte little-endian header -- magic b"RFTOKENS", uint32 version (1),
uint32 bytes per token (2 or 4), uint64 token count, uint64 document count, zero padding --
then the token ids. `shard-NNNNN.idx`: uint64 end offset of each document.
Imports only numpy (and the stdlib-only error base), so a GPU node needs nothing of the
curation stack to read shards.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refinery.errors import RefineryError

MAGIC = b"RFTOKENS"
VERSION = 1
HEADER_BYTES = 64
_HEADER = struct.Struct("<8sIIQQ")  # magic, version, bytes per token, tokens, documents


class ShardError(RefineryError, ValueError):
    """A shard that does not match the format or its manifest entry (printed without traceback)."""


@dataclass(frozen=True)
class Shard:
    path: Path
    tokens: np.ndarray  # memmap of uint16/uint32 ids
    doc_ends: np.ndarray  # uint64 end offset (exclusive) of each document

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_docs(self) -> int:
        return int(self.doc_ends.shape[0])

    def document(self, i: int) -> np.ndarray:
        start = int(self.doc_ends[i - 1]) if i > 0 else 0
        return self.tokens[start : int(self.doc_ends[i])]


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def offsets_valid(doc_ends: np.ndarray, n_tokens: int) -> bool:
    """Document end offsets rise strictly from above 0 to the token count: no empty document,
    and no token outside one."""
    ends = np.asarray(doc_ends).astype(np.int64)  # unsigned differences would wrap round
    if not len(ends):
        return n_tokens == 0
    return int(ends[-1]) == n_tokens and bool(np.all(np.diff(ends, prepend=0) > 0))


def _temp_name(target: Path) -> Path:
    """A temp file beside `target`, one per writer (a speculative task copy has its own)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


class ShardWriter:
    """Writes one shard a document at a time: the tokens go straight to a temp file and only
    the documents' end offsets stay in memory, so a task packing shards of 100M tokens holds
    none of them. `close` writes the header and the .idx and renames both into place (atomic:
    a reader sees the whole shard or none); `discard` removes what a failed task wrote."""

    def __init__(self, path: str | Path, dtype: str | np.dtype):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.uint16, np.uint32):
            raise ShardError(f"{self.path}: tokens must be uint16 or uint32, got {self.dtype}")
        self.tokens = 0
        self._ends = array("Q")  # 8 bytes a document, not a Python int's 32
        self._tmp = _temp_name(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 (open until close)
        self._file.write(b"\0" * HEADER_BYTES)  # the counts are known at close

    @property
    def documents(self) -> int:
        return len(self._ends)

    def add(self, document: np.ndarray) -> None:
        """Append one non-empty document's token ids (cast to the shard's dtype)."""
        if not len(document):
            raise ShardError(f"{self.path}: a document must hold at least one token")
        little = np.ascontiguousarray(document, dtype=self.dtype.newbyteorder("<"))
        self._file.write(little.data)
        self.tokens += len(little)
        self._ends.append(self.tokens)

    def close(self) -> None:
        """Finish the shard; on failure (a full disk) remove its temp files and re-raise."""
        idx_tmp = _temp_name(self.path.with_suffix(".idx"))
        try:
            header = _HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self.tokens, self.documents)
            self._file.seek(0)
            self._file.write(header.ljust(HEADER_BYTES, b"\0"))
            _finish(self._file)
            with open(idx_tmp, "wb") as f:
                f.write(np.asarray(self._ends, dtype="<u8").tobytes())
                _finish(f)
        except BaseException:
            self.discard()
            idx_tmp.unlink(missing_ok=True)
            raise
        os.replace(self._tmp, self.path)
        os.replace(idx_tmp, self.path.with_suffix(".idx"))

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # flushing what is buffered may fail again
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def write_documents(path: str | Path, documents: Iterable[np.ndarray], dtype) -> ShardWriter:
    """Write a shard of `documents` (nothing is left behind if one is refused); return its
    closed writer, which holds the counts."""
    writer = ShardWriter(path, dtype)
    try:
        for document in documents:
            writer.add(document)
    except BaseException:
        writer.discard()
        raise
    writer.close()
    return writer


def remove_unfinished(root: str | Path) -> list[Path]:
    """Remove the temp files under `root` of shard writers that never closed (a task attempt
    killed mid-shard, whose retry wrote the shard again); return them."""
    stale = sorted(Path(root).rglob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _finish(f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def write_shard(path: str | Path, tokens: np.ndarray, doc_ends: np.ndarray) -> None:
    """Write `path` (.bin) and its .idx atomically, from all the tokens and their documents'
    end offsets at once."""
    tokens = np.asarray(tokens)
    doc_ends = np.asarray(doc_ends).astype(np.int64)
    if not offsets_valid(doc_ends, len(tokens)):
        raise ShardError(f"{path}: document end offsets must increase and end at the token count")
    starts = np.concatenate([[0], doc_ends])[:-1]
    ranges = zip(starts, doc_ends, strict=True)
    write_documents(path, (tokens[start:end] for start, end in ranges), tokens.dtype)


def read_header(path: str | Path) -> tuple[int, int, int]:
    """Return (bytes per token, tokens, documents), checking magic, version and file size."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise ShardError(f"{path}: shard file is missing") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: truncated header ({len(raw)} of {HEADER_BYTES} bytes)")
    magic, version, width, n_tokens, n_docs = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ShardError(f"{path}: bad magic {magic!r}, expected {MAGIC!r}: not a token shard")
    if version != VERSION:
        raise ShardError(f"{path}: shard version {version}, this reader knows {VERSION}")
    if width not in (2, 4):
        raise ShardError(f"{path}: {width} bytes per token; only 2 or 4 are valid")
    if any(raw[_HEADER.size :]):  # version 1 pads with zeros: a later version's fields
        raise ShardError(
            f"{path}: header bytes {_HEADER.size}..{HEADER_BYTES - 1} are not the zero "
            f"padding of version {VERSION}"
        )
    expected = HEADER_BYTES + width * n_tokens
    actual = path.stat().st_size
    if actual != expected:
        raise ShardError(
            f"{path}: file is {actual} bytes, header promises {expected} "
            f"({n_tokens} tokens of {width} bytes): truncated or corrupted"
        )
    return width, n_tokens, n_docs


def open_shard(
    path: str | Path,
    expect_tokens: int | None = None,
    expect_docs: int | None = None,
    expect_dtype: str | None = None,
) -> Shard:
    """Memory-map a shard and its .idx, validating both (and the manifest's counts and dtype
    if given)."""
    path = Path(path)
    width, n_tokens, n_docs = read_header(path)
    if expect_dtype is not None and np.dtype(expect_dtype).itemsize != width:
        raise ShardError(
            f"{path}: {width} bytes per token, the manifest's dtype {expect_dtype} has "
            f"{np.dtype(expect_dtype).itemsize}"
        )
    if expect_tokens is not None and expect_tokens != n_tokens:
        raise ShardError(f"{path}: holds {n_tokens} tokens, the manifest says {expect_tokens}")
    if expect_docs is not None and expect_docs != n_docs:
        raise ShardError(f"{path}: holds {n_docs} documents, the manifest says {expect_docs}")
    dtype = np.dtype("<u2") if width == 2 else np.dtype("<u4")
    tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(n_tokens,))
    idx_path = path.with_suffix(".idx")
    if not idx_path.is_file():
        raise ShardError(f"{idx_path}: index file is missing")
    if idx_path.stat().st_size != 8 * n_docs:
        raise ShardError(
            f"{idx_path}: {idx_path.stat().st_size} bytes, expected {8 * n_docs} "
            f"for {n_docs} documents: truncated or corrupted"
        )
    # mapped, not read: a trainer never looks up documents, and every rank opens every shard
    doc_ends = np.memmap(idx_path, dtype="<u8", mode="r") if n_docs else np.empty(0, "<u8")
    if not offsets_valid(doc_ends, n_tokens):
        raise ShardError(f"{idx_path}: document offsets do not increase to the token count")
    return Shard(path=path, tokens=tokens, doc_ends=doc_ends)


class ShardMaps:
    """Memory maps of checked shards' tokens, made as they are read and at most `max_open` at
    a time (the least recently read let go first). A Python mmap holds a file descriptor of
    its own: a trainer that kept every shard of a corpus mapped ran out of descriptors (1,024
    by default) at about 500 shards. One is shared by all the buckets a loader reads."""

    def __init__(self, max_open: int = 64):
        self.max_open = max_open
        self._mapped: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._checked: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime)
        self._lock = threading.Lock()  # the loader's prefetch thread reads too

    def checked(self, path: Path) -> None:
        """Record the file `open_shard` has just checked: a later map must find it unchanged."""
        self._checked[path] = _identity(path)

    def read(self, path: Path, dtype: np.dtype, count: int, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the shard at `path` (`count` tokens of `dtype`), copied: a
        view would keep its map open."""
        if start >= stop:
            return np.empty(0, dtype)
        with self._lock:
            tokens = self._mapped.pop(path, None)
            if tokens is None:
                try:
                    same = _identity(path) == self._checked.get(path)
                except OSError:
                    same = False
                if not same:  # a `tokenize --force` into the same folder mid-run
                    raise ShardError(
                        f"{path}: replaced or removed since this run checked it: the tokens "
                        "folder was written again while training read it"
                    )
                tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(count,))
                if len(self._mapped) >= self.max_open:
                    self._mapped.popitem(last=False)
            self._mapped[path] = tokens
            return np.array(tokens[start:stop])


def _identity(path: Path) -> tuple[int, int]:
    """(size, modification time) of a file: another file, or this one rewritten, differs in
    one of them. Not the inode, which some network and FUSE mounts renumber as they like."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns
