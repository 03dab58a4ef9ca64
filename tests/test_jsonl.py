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


def test_text_is_split_at_newlines_only(tmp_path):
    """U+2028, U+2029, U+0085 and \\x1c are line breaks to str.splitlines(), not to JSONL."""
    import json

    from refinery.mc_data import read_benchmark
    from training.chat_data import read_conversations

    texts = ["a\u2028b", "c\u2029d", "e\x85f", "g\x1ch"]
    text = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\r\n" for t in texts)
    assert [v["text"] for _, v in json_lines(text, "f.jsonl", Bad)] == texts
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"instruction": "Q\u2028?", "output": "A"}, ensure_ascii=False))
    assert read_conversations(chat)[0][0]["content"] == "Q\u2028?"
    mc = tmp_path / "mc.jsonl"
    item = {"question": "Which\u2028one?", "options": ["(A)a", "(B)b"], "label": "A"}
    mc.write_text(json.dumps(item, ensure_ascii=False) + "\n")
    assert len(read_benchmark(mc)) == 1
