"""Text files read as UTF-8, as every reader here reads them: a byte that is not UTF-8 stops
the read with the file, the line and the byte in the message, raised as the caller's error
type. Replacing the byte instead would change what the file says (a document's byte count, a
classifier's training text, a config value) without a word.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_FIX = "convert the file to UTF-8, e.g. iconv -f cp1252 -t utf-8"
# What a JSON reader says of a value `is_unicode` refuses.
LONE_SURROGATE = (
    "holds a lone surrogate escape (a \\ud800-\\udfff without its pair): not Unicode text"
)


def is_unicode(value: Any) -> bool:
    """False when a string in `value` (a str, or the strings of a JSON value) holds a lone
    surrogate: JSON's "\\ud83d" escape without its pair decodes to one, and so do the bytes
    that were not UTF-8 in argv or a C-locale stdin. The tokenizer refuses such a str with a
    bare TypeError."""
    try:
        if isinstance(value, str):
            value.encode("utf-8")
        else:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_utf8(raw: bytes, path: str | Path, error: type[Exception]) -> str:
    """`raw`, the bytes of `path`, as text. A leading byte-order mark is dropped."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        byte = raw[err.start : err.start + 1]
        raise error(f"{path}: line {line}: byte {byte!r} is not UTF-8 ({_FIX})") from None


def read_utf8(path: str | Path, error: type[Exception]) -> str:
    """The whole of a local file as text."""
    return decode_utf8(Path(path).read_bytes(), path, error)


def utf8_lines(path: str | Path, error: type[Exception]) -> Iterator[str]:
    """A local file's lines, each with its "\\n", split at "\\n" alone (refinery/jsonl.py says
    why), read one at a time: a training set can be larger than memory."""
    with Path(path).open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                byte = raw[err.start : err.start + 1]
                raise error(f"{path}: line {number}: byte {byte!r} is not UTF-8 ({_FIX})") from None


def undecodable_row(column: Any) -> int:
    """The first row of an Arrow string column (or chunked column) whose bytes are not UTF-8,
    in one Arrow already found to hold one: a writer that does not check its strings."""
    return next(row for row in range(len(column)) if not _decodes(column, row))


def row_name(ids: Any, row: int, first_row: int = 0) -> str:
    """`document <id>` when an Arrow id column (or None) reads at `row`, else `row N`, N
    counted from `first_row`: the id may be no more UTF-8 than the text."""
    if ids is not None and ids[row].is_valid and _decodes(ids, row):
        return f"document {ids[row].as_py()!r}"
    return f"row {first_row + row}"


def _decodes(column: Any, row: int) -> bool:
    try:
        column[row].as_py()
    except UnicodeDecodeError:
        return False
    return True
