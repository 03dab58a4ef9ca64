"""Supervised fine-tuning: `refinery sft --from CKPT data=FILE out=DIR max_steps=N [key=value ...]`.

Next-token cross-entropy on the assistant turns only: system and user tokens, role tokens and
padding are masked out, and the loss is divided by the number of supervised tokens in the
global batch (every micro-batch and rank), so long and short answers weigh per token, not per
conversation. Each step logs `supervised_fraction`: supervised tokens / non-pad tokens.
A conversation longer than the model's context keeps its first seq_len tokens.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch

from training import posttrain
from training.chat_data import read_conversations
from training.posttrain import Example, SequenceBatch
from training.train import console


def fit_conversation(tokens: list[int], mask: list[int], max_tokens: int) -> Example | None:
    """The first `max_tokens` tokens; None when no supervised target is left in them."""
    tokens, mask = tokens[:max_tokens], mask[:max_tokens]
    return Example(tokens, mask) if any(mask[1:]) else None


def last_run_start(mask: list[int]) -> int:
    """Where the last run of supervised tokens (the last answer learnt) starts."""
    end = len(mask) - mask[::-1].index(1)
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start


def supervised_loss_sum(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of the masked targets; logprobs is (B, T-1) for
    targets tokens[:, 1:], so the target mask is mask[:, 1:]."""
    return -(logprobs * mask[:, 1:]).sum()


class SFTObjective(posttrain.Objective):
    name = "sft"
    figure_names = ("target_tokens",)

    def examples(self, path: Path, tokenizer, max_tokens: int, skipped: Counter) -> list:
        examples = []
        for conversation in read_conversations(path, skipped):
            tokens, mask = posttrain.encode_supervised(
                tokenizer, conversation, self.cfg.sft.supervise
            )
            example = fit_conversation(tokens, mask, max_tokens)
            if example is None:
                skipped["no answer within the context"] += 1
                continue
            self.truncated += len(example.tokens) < len(tokens)
            self.last_answer_cut += last_run_start(mask) >= max_tokens
            examples.append(example)
        return examples

    def weight(self, example: Example) -> int:
        return sum(example.mask[1:])

    def length(self, example: Example) -> int:
        return len(example.tokens)

    def collate(self, examples: list[Example], device: torch.device) -> SequenceBatch:
        tokens = posttrain.pad_rows([e.tokens for e in examples], posttrain.PAD_ID)
        mask = posttrain.pad_rows([e.mask for e in examples], 0)
        return SequenceBatch(tokens.to(device), mask.to(device))

    def loss(self, runner, batch: SequenceBatch):
        logprobs = posttrain.token_logprobs(runner, batch.tokens)
        targets = (batch.tokens[:, 1:] != posttrain.PAD_ID).sum().item()
        return supervised_loss_sum(logprobs, batch.mask), {"target_tokens": targets}

    def report(self, sums: dict[str, float], weight: float) -> dict[str, float]:
        return {
            "loss": sums["loss"] / weight,
            "supervised_tokens": weight,
            "supervised_fraction": weight / sums["target_tokens"],
        }


def main(argv: list[str] | None = None) -> int:
    return posttrain.main(SFTObjective, argv, __doc__)


if __name__ == "__main__":
    sys.exit(console(main))
