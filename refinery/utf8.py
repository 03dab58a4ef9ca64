"""Text files read as UTF-8, as every reader here reads them: a byte that is not UTF-8 stops
the read with the file, the line and the byte in the message, raised as the caller's error
type. Replacing the byte instead would change what the file says (a document's byte count, a
classifier's training text, a config value) without a word.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

_FIX = "convert the file to UTF-8, e.g. iconv -f cp1252 -t utf-8"


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
