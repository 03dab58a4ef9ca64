"""`refinery generate` and `refinery chat`: the commands end to end, and the chat loop's rules."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from refinery.cli import main as refinery
from refinery.errors import RefineryError
from training.chat import chat_loop, fit_context, prompts_from
from training.posttrain import CHAT_TEMPLATE


def fake_encode(messages: list[dict]) -> list[int]:
    """One token per word, plus one per message: enough to test the context rules."""
    return [0 for m in messages for _ in [None, *m["content"].split()]]


def test_generate_prints_a_deterministic_completion(pretrained, capsys):
    args = ["generate", "--ckpt", str(pretrained), "--prompt", "The cat", "--max-new-tokens", "8"]
    assert refinery([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert refinery([*args, "--seed", "3"]) == 0
    assert capsys.readouterr().out == first and first.strip()
    assert refinery([*args, "--chat", "--system", "Be brief.", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    # an empty prompt samples a document from its start (after EOS, as in pretraining)
    assert refinery(["generate", "--ckpt", str(pretrained), "--prompt", "", "--seed", "1"]) == 0
    assert capsys.readouterr().out.endswith("\n")


def test_generate_reports_bad_settings_without_a_traceback(pretrained, capsys):
    args = ["generate", "--ckpt", str(pretrained), "--prompt", "The cat", "--top-p", "1.5"]
    assert refinery(args) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err
    assert refinery([*args[:5], "--temperature", "nan"]) == 2  # NaN passed `< 0`
    assert "temperature must be a number >= 0 (0: greedy), got nan" in capsys.readouterr().err
    assert refinery([*args[:3], "--prompt", "x", "--system", "Be brief."]) == 2
    assert "add --chat" in capsys.readouterr().err
    # bytes that were not UTF-8, as Python keeps them from argv: the tokenizer's TypeError
    assert refinery([*args[:3], "--prompt", "caf\udce9"]) == 2
    assert "--prompt is not UTF-8 text: 'caf\\udce9'" in capsys.readouterr().err


def test_chat_reads_turns_from_stdin_until_eof(pretrained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello there\n/reset\nA dog sees\n"))
    args = ["chat", "--ckpt", str(pretrained), "--max-new-tokens", "6", "--seed", "1"]
    assert refinery(args) == 0
    out, err = capsys.readouterr()
    assert "(new conversation)" in out
    assert "> " not in out  # no prompt when stdin is not a terminal
    assert "was not post-trained (no chat_template" in err  # a base model


def test_generate_notes_a_chat_model_asked_without_the_template(pretrained, tmp_path, capsys):
    run = shutil.copytree(pretrained, tmp_path / "sft")
    (meta_path,) = run.glob("ckpt-*/meta.json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "chat_template": CHAT_TEMPLATE}))
    args = ["generate", "--ckpt", str(run), "--prompt", "The cat", "--max-new-tokens", "2"]
    assert refinery(args) == 0
    assert f"post-trained on the chat template ({CHAT_TEMPLATE}); --chat" in capsys.readouterr().err
    assert refinery([*args, "--chat"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_chat_keeps_the_conversation_and_reset_clears_it():
    seen = []

    def reply(prompt):
        seen.append(len(prompt))
        return f"answer {len(seen)}"

    said = []
    lines = ["one two\n", "three\n", "/reset\n", "four\n", "/exit\n", "never read\n"]
    final = chat_loop(lines, reply, fake_encode, seq_len=100, system="sys", say=said.append)
    # prompts: [sys, u1] = 2+3; [sys, u1, a1, u2] = 2+3+3+2; after reset [sys, u3] = 2+2
    assert seen == [5, 10, 4]
    assert said == ["answer 1", "answer 2", "(new conversation)", "answer 3"]
    assert final == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "four"},
        {"role": "assistant", "content": "answer 3"},
    ]


def test_fit_context_drops_the_oldest_exchange_first_and_keeps_the_system_message():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "a b c"},
        {"role": "assistant", "content": "d e"},
        {"role": "user", "content": "f"},
    ]
    kept, prompt = fit_context(messages, fake_encode, seq_len=20)
    assert kept == messages and len(prompt) == 11
    kept, prompt = fit_context(messages, fake_encode, seq_len=11)
    assert kept == [messages[0], messages[3]] and len(prompt) == 4
    kept, prompt = fit_context(messages, fake_encode, seq_len=3)
    assert prompt == []


def test_fit_context_leaves_room_for_the_answer_but_keeps_the_question():
    """Turns were dropped only until one token fitted: a long conversation got a one-token
    answer, cut by the context."""
    messages = [
        {"role": "user", "content": "a b c"},
        {"role": "assistant", "content": "d e"},
        {"role": "user", "content": "f"},
    ]
    kept, prompt = fit_context(messages, fake_encode, seq_len=11, answer_tokens=1)
    assert kept == messages and len(prompt) == 9
    kept, prompt = fit_context(messages, fake_encode, seq_len=11, answer_tokens=5)
    assert kept == messages[2:] and len(prompt) == 2
    kept, prompt = fit_context(messages[2:], fake_encode, seq_len=3, answer_tokens=5)
    assert kept == messages[2:]  # the question alone, with room for one token


def test_chat_says_when_turns_are_dropped_or_a_message_cannot_fit():
    said = []
    lines = ["far too many words for it\n", "a b\n", "c d\n"]
    chat_loop(lines, lambda prompt: "x", fake_encode, seq_len=6, say=said.append)
    assert said == [
        "(that message does not fit the model's context of 6 tokens)",
        "x",
        "(the oldest turns were dropped to fit the model's context)",
        "x",
    ]


def test_a_system_message_too_long_for_the_context_is_an_error_before_any_turn():
    said = []
    with pytest.raises(RefineryError, match="the system message is 6 tokens"):
        system = "one two three four five"
        chat_loop(["hi\n"], lambda prompt: "x", fake_encode, 6, system, said.append)
    assert said == []


def test_a_line_that_is_not_utf8_is_said_and_the_chat_goes_on():
    said = []
    lines = ["caf\udce9\n", "a b\n"]  # from a C-locale stdin
    chat_loop(lines, lambda prompt: "x", fake_encode, seq_len=6, say=said.append)
    assert said == ["(that message is not UTF-8 text: 'caf\\udce9')", "x"]
    with pytest.raises(RefineryError, match="--system is not UTF-8 text"):
        chat_loop([], lambda prompt: "x", fake_encode, 6, "caf\udce9", said.append)


def test_a_strict_utf8_stdin_yields_every_line_bad_bytes_as_surrogates():
    """A UTF-8 locale's stdin raised on the byte and lost the lines read with it."""
    stdin = io.TextIOWrapper(io.BytesIO(b"hello\ncaf\xe9\nhi\n"), encoding="utf-8")
    assert list(prompts_from(stdin)) == ["hello\n", "caf\udce9\n", "hi\n"]


def test_a_windows_saved_file_is_read_without_its_line_ends_and_byte_order_mark():
    """The user's text kept its \r (and the first its BOM): prompts other than SFT's, and a
    first line of /exit was a question."""
    stdin = io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfHi\r\n/exit\r\nnever\r\n"), encoding="utf-8")
    conversation = chat_loop(prompts_from(stdin), lambda prompt: "x", fake_encode, 50)
    assert conversation == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "x"},
    ]
    stdin = io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbf/exit\r\nnever\r\n"), encoding="utf-8")
    assert chat_loop(prompts_from(stdin), lambda prompt: "x", fake_encode, 50) == []


def test_a_closed_stdin_is_no_input():
    """`refinery chat <&-` (sys.stdin is None) ended in an AttributeError."""
    assert list(prompts_from(None)) == []


def test_an_answer_stdout_cannot_encode_is_written_with_question_marks(monkeypatch):
    """A PYTHONIOENCODING=ascii stdout ended generate and chat in a UnicodeEncodeError."""
    from training.generate import replacing_stdout

    written = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(written, encoding="ascii"))
    replacing_stdout()
    print("¡Buenos días!", flush=True)
    assert written.getvalue() == b"?Buenos d?as!\n"
