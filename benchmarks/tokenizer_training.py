"""Tokenizer training time against text size, and bytes per token on held-out Wikipedia.

    python benchmarks/tokenizer_training.py [--sizes 10 30 100] [--vocab 32768] [--json out.json]

The distinct real text of benchmarks/text_corpus.py (C4 web pages + WikiText-2 articles,
~1.6 MB) is repeated to each size in MB and a byte-level BPE tokenizer of --vocab tokens is
trained on it with `refinery.tokenizer.train_tokenizer` (the library's own threads on, as in
the stage). Then the compression of each trained tokenizer is measured as UTF-8 bytes per
token on the LLaMA-Factory Wikipedia articles, which no tokenizer saw; GPT-2's tokenizer
(50,257 tokens) gets about 4 bytes per token on English text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from text_corpus import heldout_wikipedia, repeated, training_documents  # noqa: E402

from refinery.tokenizer import PRETOKENIZERS, train_tokenizer  # noqa: E402


def bytes_per_token(tokenizer, texts: list[str]) -> float:
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    return sum(len(t.encode()) for t in texts) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 30, 100], help="MB")
    parser.add_argument("--vocab", type=int, default=32_768)
    parser.add_argument("--pretokenizer", choices=PRETOKENIZERS, default="llama3")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    distinct, heldout = training_documents(), heldout_wikipedia()
    distinct_mb = sum(len(t.encode()) for t in distinct) / 1e6
    heldout_mb = sum(len(t.encode()) for t in heldout) / 1e6
    print(f"distinct training text {distinct_mb:.2f} MB; held-out Wikipedia {heldout_mb:.2f} MB")
    print(f"{'text MB':>8}{'train s':>9}{'CPU-s':>8}{'vocab':>8}{'held-out bytes/token':>22}")
    results = []
    for mb in args.sizes:
        texts = repeated(distinct, int(mb * 1e6))
        started, cpu = time.perf_counter(), time.process_time()
        tokenizer = train_tokenizer(iter(texts), args.vocab, args.pretokenizer)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        ratio = bytes_per_token(tokenizer, heldout)
        vocab = tokenizer.get_vocab_size()
        print(f"{mb:>8.0f}{seconds:>9.1f}{cpu:>8.1f}{vocab:>8}{ratio:>22.2f}")
        results.append({"mb": mb, "seconds": seconds, "cpu_seconds": cpu, "bytes_per_token": ratio})
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
