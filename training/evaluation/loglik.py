"""Batched continuation log-likelihoods: the one forward pass behind bits-per-byte and MC scores.

A request is a token sequence and a count n: the sum of log p(token | everything before it) over
its last n tokens (lm-evaluation-harness's `loglikelihood` request, with the context already
joined to the continuation). Requests are sorted by length so a batch pads little, and are
right-padded: under causal attention padding after a token never changes that token's logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from refinery.config import ConfigError
from training.model import Transformer
from training.train import autocast


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def resolve_device(choice: str) -> torch.device:
    """`auto`: the GPU when there is one (lm-evaluation-harness runs on cuda when present)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ConfigError(f"--device {choice}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {choice}: this torch ({torch.__version__}) sees no CUDA GPU")
    return device


@torch.no_grad()
def continuation_logprobs(
    model: Transformer, requests: Sequence[tuple[Sequence[int], int]], batch_size: int = 8
) -> list[float]:
    """Sum of the log-probabilities of the last n tokens of each (tokens, n), in input order.

    Every sequence must fit the model: at most seq_len + 1 tokens (seq_len inputs predicting
    seq_len targets), and 1 <= n < len(tokens).
    """
    seq_len = model.cfg.seq_len
    for tokens, n in requests:
        if not 1 <= n < len(tokens) or len(tokens) > seq_len + 1:
            raise ValueError(f"request of {len(tokens)} tokens scoring {n}: seq_len is {seq_len}")
    device = model_device(model)
    was_training = model.training
    model.eval()
    order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
    scores = [0.0] * len(requests)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(requests[i][0]) for i in chunk) - 1
        inputs = torch.zeros(len(chunk), width, dtype=torch.long)
        targets = torch.zeros(len(chunk), width, dtype=torch.long)
        scored = torch.zeros(len(chunk), width, dtype=torch.bool)
        for row, i in enumerate(chunk):
            tokens, n = requests[i]
            length = len(tokens) - 1
            inputs[row, :length] = torch.as_tensor(tokens[:-1])
            targets[row, :length] = torch.as_tensor(tokens[1:])
            scored[row, length - n : length] = True
        inputs, targets, scored = inputs.to(device), targets.to(device), scored.to(device)
        with autocast(device):
            logits = model(inputs)
        logprobs = logits.float().log_softmax(dim=-1).gather(-1, targets[..., None])[..., 0]
        sums = (logprobs.double() * scored).sum(dim=-1).tolist()
        for row, i in enumerate(chunk):
            scores[i] = sums[row]
    model.train(was_training)
    return scores
