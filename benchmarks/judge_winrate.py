"""Raw vs length-controlled win rate on AlpacaEval's example outputs, and a tiny prompted judge.

    python benchmarks/judge_winrate.py [--judge CKPT] [--limit N]

../shared/data/sft/alpaca_eval_example_outputs.json has one answer set (generator "example");
the second set is derived from it, so the truth is known:
- `verbose`: each example answer followed by 0 to 3 boilerplate sentences (seeded): longer, no
  better (the number varies so that length is not confounded with the side: with a constant
  length difference the GLM cannot tell a length effect from a better model);
- `first sentence`: each example answer cut after its first sentence (shorter, worse).
1. A simulated length-biased judge on these real length distributions: its preference for A
   (a probability, as the prompted judge gives) is sigma(phi * tanh(dlen / sd)) and depends on
   nothing else (phi = 2): the raw win rate moves with length, the LC win rate should be 50.
2. With `--judge CKPT`, `refinery judge`'s prompted judge (both positions) on the same pairs:
   raw, LC, the judge's first-position preference, pairs per second. A tiny judge is near random.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.evaluation.answers import Pair, read_answers  # noqa: E402
from training.evaluation.judge import (  # noqa: E402
    judge_results,
    prompt_judge,
    swapped_preferences,
)
from training.evaluation.winrate import length_feature, win_rates  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BOILERPLATE = (
    " I hope this answer helps you.",
    " If you have any further questions about this topic, please do not hesitate to ask.",
    " Anything that is unclear here I will gladly explain in more detail.",
)


def first_sentence(text: str) -> str:
    match = re.search(r"^.*?[.!?](\s|$)", text, re.S)
    return match.group(0).strip() if match else text


def variants(answers, seed: int) -> dict[str, list[Pair]]:
    rng = np.random.default_rng(seed)
    padding = ["".join(BOILERPLATE[: rng.integers(0, 4)]) for _ in answers]
    return {
        "verbose vs example": [
            Pair(a.instruction, a.output + pad, a.output)
            for a, pad in zip(answers, padding, strict=True)
        ],
        "example vs first sentence": [
            Pair(a.instruction, a.output, first_sentence(a.output)) for a in answers
        ],
    }


def simulated(pairs: list[Pair], phi: float, seed: int) -> None:
    len_a = np.array([len(p.output_a) for p in pairs], float)
    len_b = np.array([len(p.output_b) for p in pairs], float)
    feature, _ = length_feature(len_a, len_b)
    rates = win_rates(1 / (1 + np.exp(-phi * feature)), len_a, len_b, seed=seed)
    print(
        f"  simulated length-only judge: raw {rates.win_rate:.1f} ± {rates.win_rate_stderr:.1f}, "
        f"LC {rates.lc_win_rate:.1f} ± {rates.lc_win_rate_stderr:.1f} "
        f"(fitted phi {rates.glm.phi:.2f}); avg len A {len_a.mean():.0f}, B {len_b.mean():.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--answers", default=str(SHARED / "sft" / "alpaca_eval_example_outputs.json")
    )
    parser.add_argument("--judge", help="a checkpoint for the prompted judge")
    parser.add_argument("--limit", type=int, help="the first N instructions only")
    parser.add_argument("--phi", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.answers).exists():
        print(f"skipped: {args.answers} not present")
        return 0
    answers = read_answers(args.answers)[: args.limit]
    judge = prompt_judge(args.judge, torch.device("cpu"), 32) if args.judge else None
    print(f"{len(answers)} instructions from {args.answers}")
    for name, pairs in variants(answers, args.seed).items():
        print(f"{name}:")
        simulated(pairs, args.phi, args.seed)
        if judge is None:
            continue
        judge.truncated = judge.identical = 0
        started = time.time()
        preference, first = swapped_preferences(judge, pairs)
        seconds = time.time() - started
        r = judge_results(pairs, preference, first, args.seed)
        print(
            f"  prompted judge {args.judge}: raw {r['win_rate']:.2f} ± {r['win_rate_stderr']:.2f}, "
            f"LC {r['lc_win_rate']:.2f} ± {r['lc_win_rate_stderr']:.2f}, first-position "
            f"preference {r['first_position_preference']:.3f}, {judge.truncated} of "
            f"{2 * len(pairs)} prompts cut to {judge.max_len} tokens ({judge.identical} of them "
            "showing A and B the same), "
            f"{len(pairs) / seconds:.1f} pairs/s (both orders)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
