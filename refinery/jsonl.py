"""JSON Lines as every JSONL reader here reads them: one JSON value per line.

Lines end at "\n" alone: JSON text may hold U+2028, U+0085 and the other characters at which
`str.splitlines()` also breaks, so a reader hands over its text whole. Blank lines are
skipped. A line that does not parse, or holds a lone surrogate escape (text no tokenizer
encodes), stops the reader with the file, the line (and the column) in the message, raised as
the caller's error type so that each command reports it the way it reports its other input
errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from refinery.utf8 import LONE_SURROGATE, is_unicode


def json_lines(
    text: str | Iterable[str],
    path: str | Path,
    error: type[Exception],
    lone_surrogates: bool = False,
) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of `path` (`text`: all of it, or an open
    file's lines). `lone_surrogates`: pass such values on, for a caller that skips them."""
    lines = text.split("\n") if isinstance(text, str) else text
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:  # without its newline, or a line cut short would fail at "column 1" of the next
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as err:
            where = f"{path}: line {number}, column {err.colno}"
            raise error(f"{where}: not valid JSON: {err.msg}") from None
        if not lone_surrogates and "\\u" in line and not is_unicode(value):
            raise error(f"{path}: line {number}: {LONE_SURROGATE}")
        yield number, value


def json_objects(
    text: str | Iterable[str], path: str | Path, error: type[Exception]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`json_lines` whose every value must be a JSON object."""
    for number, value in json_lines(text, path, error):
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise error(f"{path}: line {number}: expected a JSON object, found a {kind}")
        yield number, value
