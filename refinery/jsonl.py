"""JSON Lines as every JSONL reader here reads them: one JSON value per line.

Blank lines are skipped. A line that does not parse stops the reader with the file, the line
and the column in the message, raised as the caller's error type so that each command
reports it the way it reports its other input errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def json_lines(
    lines: Iterable[str], path: str | Path, error: type[Exception]
) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of `path` (`lines`: its text, split)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:  # without its newline, or a line cut short would fail at "column 1" of the next
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as err:
            where = f"{path}: line {number}, column {err.colno}"
            raise error(f"{where}: not valid JSON: {err.msg}") from None
        yield number, value


def json_objects(
    lines: Iterable[str], path: str | Path, error: type[Exception]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`json_lines` whose every value must be a JSON object."""
    for number, value in json_lines(lines, path, error):
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise error(f"{path}: line {number}: expected a JSON object, found a {kind}")
        yield number, value
