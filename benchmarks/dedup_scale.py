"""Dedup throughput: MinHash signatures per second per core, and the whole stage vs corpus size.

    python benchmarks/dedup_scale.py [--sizes 25000 50000 100000 200000] [--sign-docs 2000]

1. Signatures on one core, real documents (benchmarks/dedup_corpus.py), default shingles and
   14 x 8 permutations: datasketch (`update_batch`, one MinHash per document) vs the numpy
   implementation over batches. Target: numpy >= 3x datasketch.
2. The whole dedup stage (jobs/dedup.py run_dedup: keys, URL/exact/near groups, components,
   writing OUT/dedup, rejected/, stats) on `local[2]` for each size: real sentences drawn at
   random into documents, ~10% planted near duplicates and ~5% exact copies; wall time and peak
   resident memory of the driver, JVM and Python workers together; then the least-squares
   exponent of time vs documents (target <= 1.15).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import re
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup_corpus import SHARED, base_documents, edit  # noqa: E402

from curation.config import load_curation_config  # noqa: E402
from curation.dedup.minhash import DatasketchSigner, NumpySigner, ShingleSpec  # noqa: E402
from curation.spark.session import build_session  # noqa: E402
from jobs.dedup import run_dedup  # noqa: E402


def signature_rates(docs: list[str]) -> None:
    """Signatures per CPU-second from raw text: each implementation normalises on its own
    (datasketch through `normalized_words`' regexes, numpy through code-point tables)."""
    spec = ShingleSpec()
    rates = {}
    for name, signer, batch in [
        ("datasketch update_batch", DatasketchSigner(spec, 112, 1), 1),
        ("numpy batched", NumpySigner(spec, 112, 1), 512),
    ]:
        signer.signatures(docs[:batch])  # warm up (numpy: builds its code-point table)
        started = time.process_time()
        for first in range(0, len(docs), batch):
            signer.signatures(docs[first : first + batch])
        rates[name] = len(docs) / (time.process_time() - started)
        print(f"  {name:24} {rates[name]:8.0f} signatures/s per core from raw text")
    ratio = rates["numpy batched"] / rates["datasketch update_batch"]
    print(f"  ratio numpy / datasketch: {ratio:.1f}x")


def synthetic_documents(documents: list[str], count: int, seed: int) -> list[str]:
    """`count` texts of 200-800 words, each real sentences drawn at random from the corpus (so
    unrelated texts share almost no 5-gram), ~5% exact copies and ~10% edited copies."""
    rng = random.Random(seed)
    sentences = [s.strip() for doc in documents for s in re.split(r"(?<=[.!?])\s+", doc)]
    sentences = [s for s in sentences if len(s.split()) >= 5]
    texts: list[str] = []
    while len(texts) < count:
        roll = rng.random()
        if texts and roll < 0.05:
            texts.append(rng.choice(texts))
        elif texts and roll < 0.15:
            texts.append(edit(rng.choice(texts), rng, strength=0.02))
        else:
            target, words, picked = rng.randint(200, 800), 0, []
            while words < target:
                picked.append(rng.choice(sentences))
                words += len(picked[-1].split())
            texts.append(" ".join(picked))
    return texts


def write_corpus(path: Path, texts: list[str]) -> None:
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    n = len(texts)
    table = pa.table(
        {
            "id": [f"{i:08x}" for i in range(n)],
            "url": [f"https://site{i % 997}.example/page/{i}" for i in range(n)],
            "host": [f"site{i % 997}.example" for i in range(n)],
            "text": texts,
            "source": ["bench.warc.gz"] * n,
            "record_id": [f"<urn:uuid:{i}>" for i in range(n)],
            "fetch_time": [epoch + timedelta(seconds=i) for i in range(n)],
            "offset": list(range(n)),
        }
    )
    pq.write_table(table, path / "part-0.parquet", row_group_size=20_000)


class PeakMemory:
    """Peak resident memory of this process and all its children (JVM, Python workers)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--sign-docs", type=int, default=2000)
    parser.add_argument("--skip-signatures", action="store_true")
    parser.add_argument(
        "--warmup", type=int, default=5000, help="documents run first, untimed (JVM JIT, workers)"
    )
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not present: this benchmark needs ../shared/data")
    documents = base_documents()
    if not args.skip_signatures:
        print(f"signatures ({args.sign_docs} documents of 200-800 words, word 5-grams, 112 perms)")
        signature_rates(synthetic_documents(documents, args.sign_docs, seed=1))
    config = load_curation_config(overrides=["spark.master=local[2]"])
    spark = build_session(config.spark, "dedup-scale")
    spark.sparkContext.setLogLevel("ERROR")
    timings = []
    try:
        runs = [args.warmup, *args.sizes] if args.warmup else args.sizes
        for run, size in enumerate(runs):
            with tempfile.TemporaryDirectory() as tmp:
                corpus = Path(tmp) / "docs"
                corpus.mkdir()
                write_corpus(corpus, synthetic_documents(documents, size, seed=size))
                with PeakMemory() as memory:
                    started = time.time()
                    stats = run_dedup(spark, config, [str(corpus)], f"{tmp}/out")
                    seconds = time.time() - started
                if args.warmup and run == 0:
                    print(f"  warm-up run of {size} documents: {seconds:.1f} s")
                    continue
                timings.append(seconds)
                print(
                    f"  {size:7d} docs  {seconds:7.1f} s  {size / seconds:6.0f} docs/s  "
                    f"peak RSS {memory.peak / 2**30:.2f} GiB  kept {stats['kept']}  "
                    f"rejected {stats['rejected']}",
                    flush=True,
                )
    finally:
        spark.stop()
    if len(timings) > 1:
        print(f"growth exponent of time vs documents: {growth_exponent(args.sizes, timings):.2f}")


if __name__ == "__main__":
    main()
