"""Bits-per-byte of a small model trained on CPU on ../shared/data/wikipedia/.

    python benchmarks/eval_bpb.py --steps 200 --keep runs/eval-bench

Trains a byte-level BPE tokenizer and a small Llama-style model (through `refinery train`) on
the LLaMA-Factory Wikipedia articles except every tenth, then reports bits-per-byte and
per-token perplexity with `training.evaluation.bpb` on: the held-out tenth of those articles,
and the WikiText-2 raw test articles (other articles, and WikiText's " @-@ " spacing). The same
figures for the untrained model are the baseline: ~log2(vocab) bits per token. `--keep DIR`
keeps the run folder (its checkpoint is what benchmarks/eval_mc.py scores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from refinery.cli import main as cli  # noqa: E402
from training.evaluation.bpb import bits_per_byte, read_documents  # noqa: E402
from training.model import Transformer  # noqa: E402
from training.synthetic import write_text_dataset  # noqa: E402

TINY = REPO / "conf" / "train" / "tiny.yaml"
from training.pretrained import load_pretrained  # noqa: E402

WIKI = REPO.parent / "shared" / "data" / "wikipedia"
MODEL = ["model.d_model=128", "model.n_layers=4", "model.n_heads=4", "model.n_kv_heads=2"]
MODEL += ["model.seq_len=256", "model.qk_norm=false"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--keep", help="keep the tokens and run folders here")
    args = parser.parse_args()
    if not WIKI.is_dir():
        print(f"skipped: {WIKI} is absent")
        return 0
    torch.manual_seed(0)
    articles = read_documents(WIKI / "llamafactory_wiki_demo.txt")[0].splitlines()
    articles = [a for a in articles if a.strip()]
    held_out = articles[::10]  # write_text_dataset's validation split: never trained on
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="eval-bpb-"))
    tokens = write_text_dataset(root / "tokens", articles, vocab_size=args.vocab)
    started = time.perf_counter()
    train = ["train", "--config", str(TINY), f"data={tokens}", f"out={root / 'train'}", *MODEL]
    train += [f"max_steps={args.steps}", "train.global_batch_tokens=4096", "train.micro_batch=16"]
    train += ["train.eval_every=0", "train.progress=false", "train.tensorboard=false"]
    assert cli(train) == 0
    train_seconds = time.perf_counter() - started
    loaded = load_pretrained(root / "train")
    tokenizer = loaded.tokenizer()
    untrained = Transformer(loaded.config.model).eval()
    cfg = loaded.config.model
    print(
        f"model: d_model {cfg.d_model}, {cfg.n_layers} layers, seq_len {cfg.seq_len}, "
        f"vocab {cfg.vocab_size}, {loaded.model.num_params() / 1e6:.2f}M params; "
        f"{args.steps} steps x 4096 tokens on {len(articles) - len(held_out)} articles "
        f"in {train_seconds:.0f} s"
    )
    sets = {
        f"llamafactory held-out ({len(held_out)} articles)": held_out,
        "wikitext2_raw_test_articles.txt": read_documents(WIKI / "wikitext2_raw_test_articles.txt"),
    }
    runs = [(name, texts, "trained", loaded.model) for name, texts in sets.items()]
    runs.insert(1, (*runs[0][:2], "untrained", untrained))  # the baseline, on the small set
    for name, texts, label, model in runs:
        started = time.perf_counter()
        scores = bits_per_byte(model, tokenizer, texts, batch_size=16)
        seconds = time.perf_counter() - started
        print(
            f"{name:<38} {label:<9} bpb {scores['bpb']:.3f}  ppl {scores['perplexity']:8.1f}"
            f"  {scores['tokens']:>7} tokens {scores['bytes']:>8} bytes"
            f"  {scores['tokens'] / seconds:7.0f} tokens/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
