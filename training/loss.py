"""Next-token cross-entropy with its backward written out: softmax minus one-hot.

The logits are the largest tensor of a step (tokens × vocabulary: 3.3 GB in bf16 for 32 × 1024
tokens at 50,304), so the loss is written to pass over them as few times as it can: one
reduction forward (logsumexp), one pointwise pass back. `training.float8` reuses both halves
for its fused output projection and loss.
"""

from __future__ import annotations

import torch


def cross_entropy_parts(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of (N, V) logits against (N,) targets, in fp32 at least, and each
    row's logsumexp (what the backward needs besides the logits)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logsumexp = torch.logsumexp(logits.to(dtype), dim=-1)
    picked = logits.gather(-1, targets[:, None]).squeeze(-1).to(dtype)
    return (logsumexp - picked).mean(), logsumexp


def softmax_minus_one_hot(
    logits: torch.Tensor, targets: torch.Tensor, logsumexp: torch.Tensor
) -> torch.Tensor:
    """d(sum of per-row cross-entropies)/d(logits), in logsumexp's dtype; every entry lies in
    [-1, 1]. Compiled, one pointwise kernel that later scaling and casts fuse into; eager, one
    logits-sized buffer updated in place."""
    if torch.compiler.is_compiling():  # the one-hot as a comparison, not a scatter
        softmax = torch.exp(logits.to(logsumexp.dtype) - logsumexp[:, None])
        vocab = torch.arange(logits.shape[-1], device=logits.device)
        return softmax - (vocab == targets[:, None]).to(softmax.dtype)
    softmax = logits.to(logsumexp.dtype, copy=True).sub_(logsumexp[:, None]).exp_()
    return softmax.scatter_add_(1, targets[:, None], torch.full_like(logsumexp[:, None], -1.0))


class CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (N, V) logits against (N,) targets. Autograd's log-softmax
    backward re-reads more than the logits; this one reads them once."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss, logsumexp = cross_entropy_parts(logits, targets)
        ctx.save_for_backward(logits, targets, logsumexp)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, targets, logsumexp = ctx.saved_tensors
        gradient = softmax_minus_one_hot(logits, targets, logsumexp)
        return gradient.mul_(grad / logits.shape[0]).to(logits.dtype), None


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, T, V) logits against (B, T) targets, in fp32 at least."""
    return CrossEntropy.apply(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
