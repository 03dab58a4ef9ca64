"""Tokenize speed: bare `tokenizers` encode_batch in one process vs the Spark stage on local[N].

    python benchmarks/tokenize_throughput.py [--mb 30] [--cores 2] [--repeats 3] [--json F]

Real web and Wikipedia text (benchmarks/text_corpus.py) repeated to --mb megabytes becomes a
documents Parquet; a 32,768-token tokenizer is trained once on the distinct text. Reported,
in tokens per second per core:
  bare:  `encode_batch_fast` on batches of 1,024 documents in this process, the library's
         threads off (one core) and on (all cores, divided by their number);
  job:   the tokenize stage on local[N] with that tokenizer: footers, then tasks that read
         their row groups, encode in Python workers and write shards, the manifest; timed as
         the stage's `seconds` (SparkSession start not counted), cold (a fresh JVM) and warm
         (the same input again, --force); warm runs alternate with bare ones (--repeats
         pairs), each compared with the bare run just before it.
Each is reported twice: by wall clock (tokens / seconds / cores) and by CPU time (tokens /
CPU-seconds of this process and all its children: the JVM, the Python workers), which stays
meaningful when other work shares the machine.
Target: job per-core speed >= 0.85 x bare.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_time import add_job_arguments, alternate_with_bare, finish  # noqa: E402
from text_corpus import repeated, training_documents, write_documents  # noqa: E402

from curation.config import load_curation_config  # noqa: E402
from curation.spark.session import build_session  # noqa: E402
from jobs.tokenize import run_tokenize  # noqa: E402
from refinery.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402

BATCH = 1024


def bare_speed(tokenizer_path: Path, texts: list[str], threads: bool) -> tuple[float, float, int]:
    """(tokens per wall second, per CPU second, tokens) of encode_batch_fast over `texts`."""
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads else "false"
    tokenizer = load_tokenizer(tokenizer_path)
    tokenizer.encode_batch_fast(texts[:BATCH])  # warm up
    started, cpu, tokens = time.perf_counter(), time.process_time(), 0
    for i in range(0, len(texts), BATCH):
        tokens += sum(len(e.ids) + 1 for e in tokenizer.encode_batch_fast(texts[i : i + BATCH]))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return tokens / wall, tokens / cpu, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=30, help="megabytes of text")
    add_job_arguments(parser)
    args = parser.parse_args()
    distinct = training_documents()
    texts = repeated(distinct, int(args.mb * 1e6))
    work = Path(tempfile.mkdtemp(prefix="tokenize-bench-"))
    tokenizer_path = work / "tokenizer.json"
    train_tokenizer(iter(distinct), 32_768).save(str(tokenizer_path))
    write_documents(work / "docs", texts)
    size = sum(len(t.encode()) for t in texts)
    print(f"corpus: {len(texts)} documents, {size / 1e6:.1f} MB, in {work}")

    all_cores, all_cores_cpu, tokens = bare_speed(tokenizer_path, texts, threads=True)
    print(
        f"bare, {os.cpu_count()} threads: {all_cores / os.cpu_count():,.0f} tokens/s per core, "
        f"{all_cores_cpu:,.0f} tokens/CPU-s ({tokens:,} tokens); in tokens:"
    )
    config = load_curation_config(
        overrides=[f"spark.master=local[{args.cores}]", f"tokenize.tokenizer={tokenizer_path}"]
    )
    spark = build_session(config.spark, "tokenize-bench")
    spark.sparkContext.setLogLevel("ERROR")

    def job(name: str) -> tuple[int, float]:
        stats = run_tokenize(spark, config, [str(work / "docs")], str(work / "out"), True)
        assert stats["tokens"] == tokens, (stats["tokens"], tokens)
        return tokens, stats["seconds"]

    def bare() -> tuple[float, float]:
        return bare_speed(tokenizer_path, texts, threads=False)[:2]

    try:
        runs = alternate_with_bare(job, bare, args.cores, args.repeats)
    finally:
        spark.stop()
    finish({"mb": size / 1e6, "tokens": tokens, "runs": runs}, args.json)


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"total {time.time() - started:.0f} s")
