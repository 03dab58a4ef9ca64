"""`refinery chat --ckpt CKPT`: talk to a checkpoint on stdin/stdout with the chat template.

Each line is a user turn; the reply is sampled after the whole conversation so far, encoded with
`refinery.tokenizer.encode_chat`. `/reset` starts a new conversation; `/exit` or end of input
ends the session, so a file or a pipe can drive it (`refinery chat --ckpt X < questions.txt`).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterable

from refinery.errors import RefineryError
from refinery.tokenizer import encode_chat
from refinery.utf8 import is_unicode
from training.generate import Sampler, add_sampling_args, replacing_stdout

RESET, EXIT = "/reset", "/exit"


def fit_context(
    messages: list[dict[str, str]],
    encode: Callable[[list[dict]], list[int]],
    seq_len: int,
    answer_tokens: int = 1,
) -> tuple[list[dict[str, str]], list[int]]:
    """Drop the oldest turns (a system message stays) until the prompt leaves room for an
    answer of `answer_tokens` in `seq_len`; the last user turn alone needs room for one
    (history is given up for the answer, the question is not). Returns the kept messages and
    their prompt; the prompt is empty when even the last user turn alone does not fit."""
    system = [m for m in messages if m["role"] == "system"][:1]
    turns = [m for m in messages if m["role"] != "system"]
    while turns:
        prompt = encode(system + turns)
        if len(prompt) <= seq_len - (answer_tokens if len(turns) > 1 else 1):
            return system + turns, prompt
        turns = turns[1:]
        while turns and turns[0]["role"] != "user":  # a conversation starts with the user
            turns = turns[1:]
    return system, []


def chat_loop(
    lines: Iterable[str],
    reply: Callable[[list[int]], str],
    encode: Callable[[list[dict]], list[int]],
    seq_len: int,
    system: str | None = None,
    say: Callable[[str], None] = print,
    answer_tokens: int = 1,
) -> list[dict[str, str]]:
    """Answer each line of `lines` with `reply(prompt)`, older turns dropped to leave room
    for an answer of `answer_tokens` (`fit_context`); returns the last conversation."""
    if system and not is_unicode(system):
        raise RefineryError(f"--system is not UTF-8 text: {system!r}")
    start = [{"role": "system", "content": system}] if system else []
    if system and not fit_context([*start, {"role": "user", "content": "?"}], encode, seq_len)[1]:
        raise RefineryError(
            f"the system message is {len(encode(start))} tokens: with a turn it does not fit "
            f"the model's context of {seq_len} tokens"
        )
    messages = list(start)
    for line in lines:
        text = line.rstrip("\r\n")  # a file saved on Windows ends its lines in \r\n
        if text.strip() == EXIT:
            break
        if text.strip() == RESET:
            messages = list(start)
            say("(new conversation)")
            continue
        if not text.strip():
            continue
        if not is_unicode(text):
            say(f"(that message is not UTF-8 text: {text!r})")
            continue
        asked = [*messages, {"role": "user", "content": text}]
        kept, prompt = fit_context(asked, encode, seq_len, answer_tokens)
        if not prompt:
            say(f"(that message does not fit the model's context of {seq_len} tokens)")
            continue
        if len(kept) < len(messages) + 1:
            say("(the oldest turns were dropped to fit the model's context)")
        answer = reply(prompt)
        messages = [*kept, {"role": "assistant", "content": answer}]
        say(answer)
    return messages


def prompts_from(stream) -> Iterable[str]:
    """Lines of `stream`, with a `> ` prompt when a person is typing. Bytes that are not
    UTF-8 become lone surrogates, which the loop names and skips: a strict stdin (a UTF-8
    locale, PYTHONIOENCODING=utf-8) raised on them, and lost the lines of its 8 KB read
    before them too. A closed stdin (`<&-`: None) is no input, and a UTF-8 byte order mark
    (Notepad's) no part of the first line."""
    if stream is None:
        return
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="surrogateescape")
    interactive = stream.isatty()
    mark = "\ufeff"
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = stream.readline()
        if not line:
            return
        yield line.removeprefix(mark)
        mark = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery chat", description=__doc__.splitlines()[0])
    parser.add_argument("--system", help="system message at the start of every conversation")
    add_sampling_args(parser)
    args = parser.parse_args(argv)
    sampler = Sampler.from_args(args)
    if not sampler.chat_template:
        print(
            f"note: {args.ckpt} was not post-trained (no chat_template in its meta.json): it "
            "continues text and has not learnt the chat template; `refinery sft` teaches it",
            file=sys.stderr,
        )

    def encode(messages: list[dict]) -> list[int]:
        return encode_chat(sampler.tokenizer, messages, generation_prompt=True)

    seq_len = sampler.model.cfg.seq_len
    replacing_stdout()
    say = functools.partial(print, flush=True)  # a pipe reader sees each answer at once
    # as `refinery judge` leaves room for its answers: a long conversation left one token
    answer_tokens = max(1, min(args.max_new_tokens, seq_len // 2))
    lines = prompts_from(sys.stdin)
    chat_loop(lines, sampler.complete, encode, seq_len, args.system, say, answer_tokens)
    return 0
