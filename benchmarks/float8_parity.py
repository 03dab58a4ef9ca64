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

Each run's final weights are then measured again, on the last window's training batches and on
the validation windows, once as the reference computes and once as the candidate does: a gap
that stays when both runs are measured the same way is in the weights, not in a noisier
float8 forward.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.scaling_sweep import build_tokens
from refinery.config import load_config
from refinery.manifest import read_manifest, verified_tokenizer
from training.config import TrainConfig, TrainLoopConfig
from training.data import TokenLoader, validation_windows
from training.pretrained import load_pretrained
from training.train import (
    Distributed,
    batch_shape,
    evaluate,
    run,
    set_precision,
    validation_token_bytes,
)

TINY = Path(__file__).resolve().parent.parent / "conf" / "train" / "tiny.yaml"
DEFAULTS = [
    "max_steps=400",
    "train.global_batch_tokens=1024",  # 16 sequences of 64
    "train.eval_every=0",  # validation once, at the end
    "train.eval_tokens=16384",
    "train.progress=false",
    "train.tensorboard=false",
    "train.keep_last=1",  # the final weights, measured again at the end
]


def train(tokens: Path, out: Path, name: str, seed: int, settings: list[str]):
    """One run's metrics rows and config."""
    name = f"{name}-seed{seed}"
    settings = [*DEFAULTS, *settings, f"data={tokens}", f"out={out / name}", f"seed={seed}"]
    cfg = load_config(TrainConfig, TINY, settings)
    started = time.perf_counter()
    run(cfg)
    rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    print(f"{name}: {len(rows)} steps in {time.perf_counter() - started:.0f}s", flush=True)
    return rows, cfg


def remeasure(cfg: TrainConfig, window: int, precisions: dict[str, TrainLoopConfig]) -> dict:
    """Mean loss of `cfg.out`'s final weights on its last `window` steps' training batches and
    on the validation windows, computed as each of `precisions` (train.* settings) has it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    env = Distributed(rank=0, local_rank=0, world=1, device=device)
    manifest = read_manifest(cfg.data)
    global_windows, accum = batch_shape(cfg, 1)
    loader = TokenLoader(
        manifest, cfg.loader.mixture, cfg.model.seq_len, global_windows, accum,
        cfg.train.micro_batch, cfg.seed, 0, 1,
    )  # fmt: skip
    cursor, train_windows = loader.cursor_at(cfg.max_steps - window), []
    for step in range(cfg.max_steps - window, cfg.max_steps):
        batch = loader.make_batch(step, cursor)
        cursor = batch.cursor
        train_windows += list(batch.tokens.flatten(0, 1).numpy())
    splits = {
        "train": train_windows,
        "val": validation_windows(manifest, cfg.model.seq_len, cfg.train.eval_tokens, 0, 1),
    }
    figures = {}
    for name, loop in precisions.items():
        model = load_pretrained(cfg.out, device).model
        set_precision(model, loop, device)
        tokenizer = verified_tokenizer(manifest)
        token_bytes = validation_token_bytes(tokenizer, manifest, model.cfg.vocab_size)
        figures[name] = {
            split: evaluate(model, windows, cfg, env, token_bytes.to(device))["val_loss"]
            for split, windows in splits.items()
        }
    return figures


def window_means(rows: list[dict], window: int) -> list[float]:
    losses = [r["loss"] for r in rows]
    return [
        sum(losses[i : i + window]) / len(losses[i : i + window])
        for i in range(0, len(losses), window)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for parity.json (and tokens/)")
    parser.add_argument("--runs", help="folder for the runs' checkpoints (default: --out)")
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
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs) if args.runs else out
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
        reference_rows, reference_cfg = train(tokens, runs_dir, "reference", seed, args.overrides)
        settings = [*args.overrides, *candidate]
        float8_rows, float8_cfg = train(tokens, runs_dir, "float8", seed, settings)
        runs = {False: reference_rows, True: float8_rows}
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
        precisions = {"as reference": reference_cfg.train, "as candidate": float8_cfg.train}
        again = {
            name: remeasure(cfg, args.window, precisions)
            for name, cfg in (("reference", reference_cfg), ("float8", float8_cfg))
        }
        print(f"final weights, last {args.window} steps' batches / validation:")
        for name, figures in again.items():
            cells = [f"{f['train']:.4f} / {f['val']:.4f} {how}" for how, f in figures.items()]
            print(f"  {name}: {'; '.join(cells)}")
        report["seeds"][seed] = {
            **finals,
            "window_means": {"reference": reference, "float8": float8},
            "final_weights": again,
        }
        # after every seed: a run cut short by a time limit keeps the seeds it finished
        (out / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    for seed, figures in report["seeds"].items():  # last, where a log's tail keeps them
        gap = figures["window_means"]["float8"][-1] - figures["window_means"]["reference"][-1]
        print(
            f"seed {seed}: last window gap {gap:+.4f}; final val loss reference "
            f"{figures['reference']['val_loss']:.4f}, float8 {figures['float8']['val_loss']:.4f}"
        )
    if len(seeds) > 1:  # how far apart seeds land, to read the float8 gap against
        for name in ("reference", "float8"):
            losses = [report["seeds"][seed][name]["val_loss"] for seed in seeds]
            print(f"{name}: final val loss over seeds {min(losses):.4f} to {max(losses):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
