"""A CPU-scale scaling-law sweep on real text, with its fitted tokens per parameter.

    python -m benchmarks.scaling_sweep --out /tmp/scaling-bench [key=value ...]
    python -m benchmarks.scaling_sweep --tokens OUT/tokens --out /tmp/scaling-bench

Without --tokens, builds a tokens folder from ../shared/data (C4 pages and WikiText-2 articles
to train on, the held-out LLaMA-Factory Wikipedia articles as the validation split) with the
tokenize stage's own functions (byte-level BPE, EOS per document) and no Spark. Then runs
`refinery scaling` (conf/scaling/cpu.yaml, or --config, plus key=value overrides) on it and
prints each point, the fit with its bootstrap intervals, and the compute-optimal split.
Rerunning with the same --out skips finished points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.text_corpus import heldout_wikipedia, training_documents
from refinery.config import load_config
from refinery.manifest import read_manifest
from refinery.tokenizer import PRETOKENIZERS
from training.scaling_sweep import ScalingConfig, run
from training.synthetic import write_text_dataset

SWEEP = Path(__file__).resolve().parent.parent / "conf" / "scaling" / "cpu.yaml"


def build_tokens(root: Path, vocab_size: int, pretokenizer: str = PRETOKENIZERS[0]) -> None:
    """Shards of real text in the manifest format the trainer reads (one bucket, `web`)."""
    if (root / "manifest.json").is_file():
        return
    write_text_dataset(
        root,
        training_documents(),
        vocab_size,
        heldout_wikipedia(),
        "benchmark-scaling-sweep",
        pretokenizer,
    )
    manifest = read_manifest(root)
    print(
        f"tokens: {manifest.buckets['web'].tokens} training, {manifest.validation.tokens} "
        f"validation (vocab {manifest.tokenizer.vocab_size})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="sweep folder (and tokens/ when built)")
    parser.add_argument("--tokens", help="an existing tokens folder instead of ../shared/data")
    parser.add_argument("--vocab", type=int, default=512, help="BPE vocabulary when building")
    parser.add_argument("--pretokenizer", choices=PRETOKENIZERS, default=PRETOKENIZERS[0])
    parser.add_argument("--config", default=str(SWEEP), help="sweep config (conf/scaling/)")
    parser.add_argument("overrides", nargs="*", help="key=value on the sweep config")
    args = parser.parse_args(argv)
    out = Path(args.out)
    tokens = Path(args.tokens) if args.tokens else out / "tokens"
    if not args.tokens:
        build_tokens(tokens, args.vocab, args.pretokenizer)
    cfg = load_config(
        ScalingConfig, args.config, [*args.overrides, f"data={tokens}", f"out={out / 'sweep'}"]
    )
    started = time.perf_counter()
    report = run(cfg)
    trained = sum(p["seconds"] for p in report["points"])
    print(f"sweep: {time.perf_counter() - started:.0f} s wall, {trained:.0f} s in training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
