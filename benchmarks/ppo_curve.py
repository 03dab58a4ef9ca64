"""PPO reward and KL curves: a toy reward on a random model, then RLHF on ../shared/data.

    python benchmarks/ppo_curve.py --work /tmp/ppo-bench [--toy-steps 40] [--pretrain-steps 200]
        [--steps 60] [--ppo-steps 40] [--toy-only]

1. Toy: a random tiny model rewarded with the share of its answer tokens that are one given id,
   for several KL coefficients: the reward rises and the KL to the reference grows more slowly
   the larger the coefficient.
2. RLHF (skipped when ../shared/data is absent): the chain of benchmarks/posttrain.py through
   the real commands: pretrain a small model on the shared Wikipedia and C4 text, SFT on
   Alpaca-GPT4, a reward model on Anthropic HH harmless-base, then `refinery ppo` from the SFT
   model with that reward model on the HH prompts.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from posttrain import BASE, SHARED, metrics, pretraining_texts, stage  # noqa: E402

from training.ppo import toy_run  # noqa: E402

TARGET = 9


def share_of_target(prompts, responses) -> torch.Tensor:
    return torch.tensor([sum(t == TARGET for t in r) / len(r) for r in responses])


def print_curve(rows: list[dict], every: int) -> None:
    print("step  reward   kl      entropy  value_loss  clip_frac  answer_tokens")
    for i, row in enumerate(rows, 1):
        if i == 1 or i % every == 0:
            print(
                f"{i:4d}  {row['reward']:+.3f}  {row['kl']:6.3f}  {row['entropy']:6.3f}   "
                f"{row['value_loss']:8.4f}   {row['clip_fraction']:.3f}      "
                f"{row['answer_tokens']:.1f}"
            )


def rlhf(work: Path, pretrain_steps: int, steps: int, ppo_steps: int) -> None:
    from training.synthetic import write_text_dataset

    tokens = work / "tokens"
    if not (tokens / "manifest.json").is_file():
        write_text_dataset(tokens, pretraining_texts(), vocab_size=4096)
    base, sft, rm, ppo = work / "base", work / "sft", work / "rm", work / "ppo"
    common = ["progress=false", f"max_steps={steps}"]
    hh = SHARED / "preference" / "hh_rlhf_harmless_base_test.jsonl.gz"
    train = ["train", "--config", str(REPO / "conf/train/tiny.yaml"), f"data={tokens}"]
    stage("pretrain", base, [*train, f"max_steps={pretrain_steps}", *BASE])
    alpaca = SHARED / "sft" / "alpaca_en_demo.json"
    stage("sft", sft, ["sft", "--from", str(base), f"data={alpaca}", *common])
    stage("rm", rm, ["rm", "--from", str(sft), f"data={hh}", *common])
    ppo_args = ["ppo", "--from", str(sft), f"reward={rm}", f"data={hh}", "progress=false"]
    stage("ppo", ppo, [*ppo_args, f"max_steps={ppo_steps}", "ppo.max_new_tokens=32"])
    last_rm = metrics(rm)[-1]
    print(
        f"\nreward model on HH harmless-base: val_accuracy {last_rm['val_accuracy']:.3f} "
        f"after {steps} steps"
    )
    rows = metrics(ppo)
    print("PPO from the SFT model on the HH prompts (kl_coef 0.05, 16 prompts per step)")
    print_curve(rows, max(1, len(rows) // 10))
    seconds = sum(r["step_seconds"] for r in rows) / len(rows)
    print(f"mean step: {seconds:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--toy-steps", type=int, default=40)
    parser.add_argument("--pretrain-steps", type=int, default=200)
    parser.add_argument("--steps", type=int, default=60, help="SFT and reward-model steps")
    parser.add_argument("--ppo-steps", type=int, default=40)
    parser.add_argument("--toy-only", action="store_true")
    args = parser.parse_args()
    for kl_coef in (0.0, 0.05, 0.2):
        print(f"\ntoy: reward = share of answer tokens equal to id {TARGET}, kl_coef {kl_coef}")
        print_curve(toy_run(share_of_target, kl_coef, args.toy_steps), max(1, args.toy_steps // 8))
    if args.toy_only:
        return 0
    if not SHARED.is_dir():
        print(f"\n{SHARED} absent: RLHF part skipped")
        return 0
    rlhf(args.work, args.pretrain_steps, args.steps, args.ppo_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
