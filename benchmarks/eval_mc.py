"""Multiple-choice scoring speed (items/s) and accuracy of a checkpoint, on CPU or the GPU.

    python benchmarks/eval_mc.py --ckpt runs/eval-bench/train --limit 40 --shots 0 5

Scores the first `--limit` items of every benchmark file in ../shared/data/mc_eval/ (the
hand-written conf/eval/demo_mc.jsonl when it is absent) with `training.evaluation.mc`, zero- and
few-shot, and prints items/s and choices/s per benchmark (all MMLU-Redux subjects together),
with acc / acc_norm. Speed depends on the prompt length: AGIEval passages fill the context,
PIQA questions are short.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from refinery.mc_data import read_benchmarks  # noqa: E402
from training.evaluation.loglik import resolve_device  # noqa: E402
from training.evaluation.mc import score_benchmark  # noqa: E402
from training.pretrained import load_pretrained  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "mc_eval"
DEMO = REPO / "conf" / "eval" / "demo_mc.jsonl"


def group(stem: str) -> str:
    return "mmlu_redux (all subjects)" if stem.startswith("mmlu_") else stem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder or ckpt-<step>")
    parser.add_argument("--mc", default=str(SHARED if SHARED.is_dir() else DEMO))
    parser.add_argument("--limit", type=int, default=40, help="items per benchmark file")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 5])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    loaded = load_pretrained(args.ckpt, device=device)
    tokenizer = loaded.tokenizer()
    groups: dict[str, list] = {}
    for stem, items in read_benchmarks(args.mc).items():
        groups.setdefault(group(stem), []).append(items[: args.limit])
    cfg = loaded.config.model
    print(
        f"{args.ckpt}: {loaded.model.num_params() / 1e6:.2f}M params, seq_len {cfg.seq_len}, "
        f"device {device}, batch {args.batch_size}, first {args.limit} items per file"
    )
    for shots in args.shots:
        total_items = total_seconds = 0.0
        for name, files in groups.items():
            started = time.perf_counter()
            results = [
                score_benchmark(loaded.model, tokenizer, items, shots, args.batch_size)
                for items in files
            ]
            seconds = time.perf_counter() - started
            n = sum(r["n"] for r in results)
            choices = sum(len(item.choices) for items in files for item in items)
            acc = sum(r["acc"] * r["n"] for r in results) / n
            acc_norm = sum(r["acc_norm"] * r["n"] for r in results) / n
            print(
                f"{shots}-shot {name:<26} n {n:>4}  acc {acc:.3f}  acc_norm {acc_norm:.3f}  "
                f"{n / seconds:7.1f} items/s  {choices / seconds:7.1f} choices/s"
            )
            total_items += n
            total_seconds += seconds
        print(f"{shots}-shot all: {total_items / total_seconds:.1f} items/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
