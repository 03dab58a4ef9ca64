"""Answers from a checkpoint: `refinery judge --a CKPT --instructions FILE` samples them.

Each instruction becomes one user turn of the chat template; the model continues after the
assistant tag until the end of its turn, `max_new_tokens`, or its context is full.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from refinery.errors import RefineryError
from refinery.tokenizer import encode_chat
from training.evaluation.answers import Answer
from training.generate import DEFAULT_STOP_IDS, SAMPLING_DEFAULTS, check_settings, generate
from training.pretrained import load_pretrained


@dataclass(frozen=True)
class Sampling:
    # defaults of `refinery generate`
    max_new_tokens: int = SAMPLING_DEFAULTS["max_new_tokens"]
    temperature: float = SAMPLING_DEFAULTS["temperature"]
    top_p: float = SAMPLING_DEFAULTS["top_p"]
    seed: int = 0
    batch_size: int = 16


def chat_prompt(tokenizer, instruction: str, room: int) -> list[int]:
    """The instruction as a user turn, its text cut at the end when the prompt would exceed
    `room` tokens (a small model's context must leave space for the answer). The template's
    tags are never cut: the prompt always ends with the assistant tag."""
    ids = encode_chat(tokenizer, [{"role": "user", "content": instruction}], True)
    words = tokenizer.encode(instruction).ids
    keep = len(words)
    while len(ids) > room:
        if keep == 0:
            raise RefineryError(f"a context of {room} tokens cannot hold the chat template")
        keep = max(0, keep - (len(ids) - room))  # a cut text can re-encode a little longer
        text = tokenizer.decode(words[:keep])
        ids = encode_chat(tokenizer, [{"role": "user", "content": text}], True)
    return ids


def answer_instructions(
    ckpt: str | Path, instructions: list[str], device: torch.device, sampling: Sampling
) -> list[Answer]:
    """One sampled answer per instruction, seeded, in batches."""
    check_settings(sampling.temperature, 0, sampling.top_p, sampling.max_new_tokens)
    loaded = load_pretrained(ckpt, device)
    model, tokenizer = loaded.model.eval(), loaded.tokenizer()
    seq_len = model.cfg.seq_len
    room = max(1, seq_len - min(sampling.max_new_tokens, seq_len // 2))
    generator = torch.Generator(device).manual_seed(sampling.seed)
    name = loaded.path.parent.name if loaded.path.name.startswith("ckpt-") else loaded.path.name
    answers, cut = [], 0
    for start in range(0, len(instructions), sampling.batch_size):
        batch = instructions[start : start + sampling.batch_size]
        whole = [encode_chat(tokenizer, [{"role": "user", "content": t}], True) for t in batch]
        cut += sum(len(ids) > room for ids in whole)
        prompts = [  # only a prompt past the room is encoded again, cut
            ids if len(ids) <= room else chat_prompt(tokenizer, text, room)
            for ids, text in zip(whole, batch, strict=True)
        ]
        outputs = generate(
            model,
            prompts,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            generator=generator,
            vocab_size=tokenizer.get_vocab_size(),
        )
        for text, out in zip(batch, outputs, strict=True):
            if out and out[-1] in DEFAULT_STOP_IDS:
                out = out[:-1]
            answers.append(Answer(text, tokenizer.decode(out, skip_special_tokens=True), name))
    if cut:
        print(
            f"{name}: {cut} of the {len(instructions)} instructions did not fit its context of "
            f"{seq_len} tokens less the answer's room, and were cut at their end to answer",
            file=sys.stderr,
        )
    return answers
