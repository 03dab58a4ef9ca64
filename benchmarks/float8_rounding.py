"""How much the float8 head's rounding changes the logits' gradient (CPU, seconds).

    python -m benchmarks.float8_rounding [--vocab 50304] [--rows 256] [--seed 0]

`train.float8_head` casts softmax minus one-hot to e5m2 (2 mantissa bits) where the bf16 head
keeps it in bf16 (7). This prints, for rows whose target probability falls in each band, the
relative error of the rounded gradient (its norm against the exact one's) and the bias of
its non-target part (the rounded probabilities' sum against their exact sum, which is the
amount the gradient pushes the other tokens down), for bf16, for e5m2 rounded to nearest
(the head's default) and for e5m2 rounded stochastically
(`train.float8_head_rounding=stochastic`: unbiased in expectation), each cast as
`training.float8` casts it. Rows are synthetic: a Zipf tail (exponent 1.1, a language
model's) over the vocabulary with noise, and the target's probability drawn uniformly within
the band.
"""

from __future__ import annotations

import argparse
import math

import torch

from training.float8 import E5M2, LOGITS_GRADIENT_SCALE, round_stochastically

BANDS = [(0.001, 0.01), (0.01, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 0.99)]


def gradient_rows(vocab: int, rows: int, band: tuple[float, float], generator) -> torch.Tensor:
    """softmax(logits) - one_hot(target) for `rows` rows with p(target) in `band`."""
    ranks = torch.arange(1, vocab + 1, dtype=torch.float64)
    tail = -1.1 * ranks.log()
    logits = torch.stack([tail[torch.randperm(vocab, generator=generator)] for _ in range(rows)])
    logits += 0.5 * torch.randn(rows, vocab, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    low, high = band
    p = low + (high - low) * torch.rand(rows, generator=generator, dtype=torch.float64)
    index = torch.arange(rows)
    logits[index, targets] = -math.inf
    logits[index, targets] = logits.logsumexp(-1) + (p / (1 - p)).log()
    gradient = logits.softmax(-1)
    gradient[index, targets] -= 1
    return gradient


def rounded(gradient: torch.Tensor, how: str) -> torch.Tensor:
    """`gradient` (float64) through bf16 or e5m2 as the heads cast it, back in float64."""
    if how == "bf16":
        return gradient.bfloat16().double()
    x = (gradient * LOGITS_GRADIENT_SCALE).float()
    x8 = round_stochastically(x) if how == "e5m2 stochastic" else x.to(E5M2)
    return x8.double() / LOGITS_GRADIENT_SCALE


def measure(exact: torch.Tensor, approx: torch.Tensor) -> tuple[float, float]:
    """(relative error of the whole gradient, relative bias of its positive part)."""
    error = ((approx - exact).norm() / exact.norm()).item()
    positive = exact > 0
    bias = (approx[positive].sum() / exact[positive].sum() - 1).item()
    return error, bias


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)  # stochastic rounding draws from the global generator
    kinds = ["bf16", "e5m2", "e5m2 stochastic"]
    print("p(target)    " + "".join(f"| {k}: error, bias " for k in kinds))
    for band in BANDS:
        exact = gradient_rows(args.vocab, args.rows, band, generator)
        cells = []
        for how in kinds:
            error, bias = measure(exact, rounded(exact, how))
            cells.append(f"| {100 * error:5.2f}%, {100 * bias:+6.3f}% ")
        print(f"{band[0]:.3f}-{band[1]:.2f}  " + "".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
