"""Memory a tokenize task needs to pack its documents into shards, and its write speed.

    python benchmarks/tokenize_memory.py [--tokens 30000000] [--buckets 3] [--shard-tokens 10000000]

A task of the tokenize stage packs every kept document into its bucket's shard
(curation/tokenize.py: pack_documents). The cluster preset (conf/curation/cluster.yaml) has
512 tasks and shards of 100M tokens, so on terabytes of text a task fills many full shards
per bucket. Here synthetic documents (1,000 uint32 token ids each, generated on the fly, in
bucket order round-robin) are packed into a temp folder; tracemalloc's peak counts numpy's
buffers and Python's objects (not the page cache).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.tokenize import pack_documents  # noqa: E402

DOCUMENT_TOKENS = 1_000


def documents(total: int, buckets: int):
    rng = np.random.default_rng(0)
    for i in range(total // DOCUMENT_TOKENS):
        tokens = rng.integers(0, 100_000, size=DOCUMENT_TOKENS, dtype=np.uint32)
        yield f"bucket{i % buckets}", tokens, 4 * DOCUMENT_TOKENS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=30_000_000)
    parser.add_argument("--buckets", type=int, default=3)
    parser.add_argument("--shard-tokens", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        tracemalloc.start()
        start = time.perf_counter()
        entries = pack_documents(
            documents(args.tokens, args.buckets), Path(root), 0, args.shard_tokens,
            args.shard_tokens, "uint32",
        )  # fmt: skip
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    tokens = sum(entry["tokens"] for entry in entries)
    print(
        f"{tokens:,} tokens in {len(entries)} shards ({args.buckets} buckets, "
        f"{args.shard_tokens:,} tokens a shard, uint32): peak traced memory "
        f"{peak / 2**20:,.1f} MiB, {seconds:.1f} s ({tokens / seconds / 1e6:.1f}M tokens/s)"
    )


if __name__ == "__main__":
    main()
