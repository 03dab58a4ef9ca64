"""Does training with float8 linear layers follow training without? Loss curves on real text.

    python -m benchmarks.float8_parity --out /tmp/float8-parity [key=value ...]
    python -m benchmarks.float8_parity --tokens OUT/tokens --out DIR model.d_model=256 ...
    python -m benchmarks.float8_parity --out DIR --candidate train.float8_head=true \
        --candidate train.autocast_residual=true ...

Builds the scaling sweep's tokens folder from ../shared/data (C4 pages and WikiText-2 to train
on, held-out Wikipedia to validate; or takes --tokens), then, for each of --seeds, trains the
same model twice from that seed on the same batches, `train.float8=false` and `true` (with
`--head`, `train.float8_head=true` as well; `--candidate` names the second run's settings
instead): conf/train/tiny.yaml with this script's defaults and any key=value overrides.
Prints the mean training loss of both runs over windows of steps, their gap, each run's final
validation loss and bits per byte, and how far the seeds' final losses spread, the noise to
read a gap against. On CPU the reference run is fp32; on a GPU it is bf16 autocast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.scaling_sweep import build_tokens
from refinery.config import load_config
from training.config import TrainConfig
from training.train import run

TINY = Path(__file__).resolve().parent.parent / "conf" / "train" / "tiny.yaml"
DEFAULTS = [
    "max_steps=400",
    "train.global_batch_tokens=1024",  # 16 sequences of 64
    "train.eval_every=0",  # validation once, at the end
    "train.eval_tokens=16384",
    "train.progress=false",
    "train.tensorboard=false",
    "train.save_final=false",
]


def train(tokens: Path, out: Path, name: str, seed: int, settings: list[str]):
    """One run's metrics rows."""
    name = f"{name}-seed{seed}"
    settings = [*DEFAULTS, *settings, f"data={tokens}", f"out={out / name}", f"seed={seed}"]
    cfg = load_config(TrainConfig, TINY, settings)
    started = time.perf_counter()
    run(cfg)
    rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    print(f"{name}: {len(rows)} steps in {time.perf_counter() - started:.0f}s", flush=True)
    return rows


def window_means(rows: list[dict], window: int) -> list[float]:
    losses = [r["loss"] for r in rows]
    return [
        sum(losses[i : i + window]) / len(losses[i : i + window])
        for i in range(0, len(losses), window)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the runs (and tokens/)")
    parser.add_argument("--tokens", help="an existing tokens folder instead of ../shared/data")
    parser.add_argument("--vocab", type=int, default=512, help="BPE vocabulary when building")
    parser.add_argument("--window", type=int, default=50, help="steps per reported mean")
    parser.add_argument("--seeds", default="0,1", help="comma-separated; a pair of runs each")
    parser.add_argument("--head", action="store_true", help="float8 LM head too (float8_head)")
    parser.add_argument(
        "--candidate", action="append", help="a key=value of the second run (repeatable)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value on the training config")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    out = Path(args.out)
    tokens = Path(args.tokens) if args.tokens else out / "tokens"
    if not args.tokens:
        build_tokens(tokens, vocab_size=args.vocab)
    candidate = args.candidate or [
        "train.float8=true",
        f"train.float8_head={str(args.head).lower()}",
    ]
    report = {"overrides": args.overrides, "candidate": candidate, "window": args.window}
    report["seeds"] = {}
    for seed in seeds:
        runs = {
            False: train(tokens, out, "reference", seed, args.overrides),
            True: train(tokens, out, "float8", seed, [*args.overrides, *candidate]),
        }
        reference, float8 = (window_means(runs[flag], args.window) for flag in (False, True))
        print(f"seed {seed}\n{'steps':>11}  {'reference':>9}  {'float8':>9}  {'gap':>7}")
        for i, (a, b) in enumerate(zip(reference, float8, strict=True)):
            steps = f"{i * args.window + 1}-{min((i + 1) * args.window, len(runs[False]))}"
            print(f"{steps:>11}  {a:9.4f}  {b:9.4f}  {b - a:+7.4f}")
        finals = {
            name: {"val_loss": runs[flag][-1]["val_loss"], "val_bpb": runs[flag][-1]["val_bpb"]}
            for name, flag in (("reference", False), ("float8", True))
        }
        for name, final in finals.items():
            print(f"{name}: final val loss {final['val_loss']:.4f}, {final['val_bpb']:.4f} bpb")
        report["seeds"][seed] = {
            **finals,
            "window_means": {"reference": reference, "float8": float8},
        }
    if len(seeds) > 1:  # how far apart seeds land, to read the float8 gap against
        for name in ("reference", "float8"):
            losses = [report["seeds"][seed][name]["val_loss"] for seed in seeds]
            print(f"{name}: final val loss over seeds {min(losses):.4f} to {max(losses):.4f}")
    (out / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
