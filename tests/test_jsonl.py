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


def test_a_lone_surrogate_escape_is_named_by_its_line_where_every_reader_reads_it(tmp_path):
    """The tokenizer refuses such text with a bare TypeError after the model is loaded: eval
    --bpb and --mc, judge's answers (JSONL and JSON arrays) and train-quality's JSONL crashed."""
    from refinery.mc_data import BenchmarkError, read_benchmark
    from training.chat_data import read_conversations
    from training.evaluation.answers import AnswersError, read_answers
    from training.evaluation.bpb import read_documents

    lone = r'{"text": "ok"}' + "\n" + r'{"text": "lone \udc80 here"}' + "\n"
    paired = r'{"text": "\ud83d\ude00 is one emoji"}'
    assert [v["text"] for _, v in json_lines(paired, "f.jsonl", Bad)] == ["\U0001f600 is one emoji"]
    with pytest.raises(Bad, match=r"^f.jsonl: line 2: holds a lone surrogate escape"):
        list(json_lines(lone, "f.jsonl", Bad))
    assert len(list(json_lines(lone, "f.jsonl", Bad, lone_surrogates=True))) == 2

    (tmp_path / "bpb.jsonl").write_text(lone)
    with pytest.raises(Exception, match=r"bpb.jsonl: line 2: holds a lone surrogate"):
        read_documents(tmp_path / "bpb.jsonl")
    piqa = r'{"goal": "open a jar \ud83d", "sol1": "twist", "sol2": "eat it", "label": 0}'
    (tmp_path / "mc.jsonl").write_text(piqa + "\n")
    with pytest.raises(BenchmarkError, match=r"mc.jsonl: line 1: holds a lone surrogate"):
        read_benchmark(tmp_path / "mc.jsonl")
    answer = r'{"instruction": "Say hi \ud83d", "output": "hi", "generator": "a"}'
    (tmp_path / "a.jsonl").write_text(answer + "\n")
    with pytest.raises(AnswersError, match=r"a.jsonl: line 1: holds a lone surrogate"):
        read_answers(tmp_path / "a.jsonl")
    (tmp_path / "a.json").write_text(f"[{answer}]")
    with pytest.raises(AnswersError, match=r"a.json: record 1 holds a lone surrogate"):
        read_answers(tmp_path / "a.json")
    chat = (
        r'{"instruction": "Q \ud83d", "output": "A"}' + "\n" + '{"instruction": "Q", "output": "A"}'
    )
    (tmp_path / "chat.jsonl").write_text(chat)
    assert len(read_conversations(tmp_path / "chat.jsonl")) == 1  # SFT skips it, and counts it
