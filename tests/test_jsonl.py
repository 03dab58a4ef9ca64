"""The one JSON Lines reader: blank lines skipped, bad lines named by file, line and column."""

import pytest

from refinery.errors import RefineryError
from refinery.jsonl import json_lines, json_objects


class Bad(RefineryError):
    pass


def test_values_come_with_their_line_numbers():
    lines = ['{"a": 1}\n', "\n", "   \n", "[2]\n", '"x"']
    assert list(json_lines(lines, "f.jsonl", Bad)) == [(1, {"a": 1}), (4, [2]), (5, "x")]


def test_a_line_cut_short_names_its_own_line_and_column():
    with pytest.raises(Bad, match=r"^f.jsonl: line 2, column 6: not valid JSON: Expecting"):
        list(json_lines(['{"a": 1}\n', '{"a":\n', '{"a": 3}\n'], "f.jsonl", Bad))


def test_objects_only():
    assert list(json_objects(['{"a": 1}'], "f.jsonl", Bad)) == [(1, {"a": 1})]
    with pytest.raises(Bad, match=r"f.jsonl: line 2: expected a JSON object, found a list"):
        list(json_objects(['{"a": 1}', "[1]"], "f.jsonl", Bad))
