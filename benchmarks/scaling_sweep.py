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
from curation.tokenize import encode_documents, train_tokenizer
from refinery.config import load_config
from refinery.manifest import sha256_file, split_entry, write_documents_shard, write_manifest
from refinery.tokenizer import BOS, EOS, PAD, special_ids
from training.scaling_sweep import ScalingConfig, run

SWEEP = Path(__file__).resolve().parent.parent / "conf" / "scaling" / "cpu.yaml"


def build_tokens(root: Path, vocab_size: int) -> None:
    """Shards of real text in the manifest format the trainer reads (one bucket, `web`)."""
    if (root / "manifest.json").is_file():
        return
    train, heldout = training_documents(), heldout_wikipedia()
    tokenizer = train_tokenizer(train, vocab_size)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(root / "tokenizer.json"))

    def shard(rel: str, texts: list[str]) -> dict:
        docs = encode_documents(tokenizer, texts, "uint16")
        return write_documents_shard(root, rel, docs, "uint16", [len(t.encode()) for t in texts])

    ids = special_ids(tokenizer)
    content = {
        "version": 1,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": sha256_file(root / "tokenizer.json"),
            "vocab_size": tokenizer.get_vocab_size(),
            "bos_id": ids[BOS],
            "eos_id": ids[EOS],
            "pad_id": ids[PAD],
        },
        "dtype": "uint16",
        "buckets": {"web": split_entry([shard("web/shard-00000.bin", train)])},
        "validation": split_entry([shard("validation/shard-00000.bin", heldout)]),
        "mixtures": {"pretrain": {"web": 1.0}},
        "max_epochs": 4.0,
        "curation_config_hash": "benchmark-scaling-sweep",
    }
    manifest = write_manifest(root, content)
    print(
        f"tokens: {manifest.buckets['web'].tokens} training, {manifest.validation.tokens} "
        f"validation (vocab {manifest.tokenizer.vocab_size})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="sweep folder (and tokens/ when built)")
    parser.add_argument("--tokens", help="an existing tokens folder instead of ../shared/data")
    parser.add_argument("--vocab", type=int, default=512, help="BPE vocabulary when building")
    parser.add_argument("--config", default=str(SWEEP), help="sweep config (conf/scaling/)")
    parser.add_argument("overrides", nargs="*", help="key=value on the sweep config")
    args = parser.parse_args(argv)
    out = Path(args.out)
    tokens = Path(args.tokens) if args.tokens else out / "tokens"
    if not args.tokens:
        build_tokens(tokens, args.vocab)
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
