"""Filter stage speed: the bare filter chain in one process vs the Spark stage on local[N].

    python benchmarks/filter_throughput.py [--mb 40] [--cores 2] [--repeats 3] [--json F]

Real web and Wikipedia text (benchmarks/text_corpus.py) repeated to --mb megabytes becomes a
documents Parquet. Reported, in documents per second per core:
  bare:  `FilterChain.apply` (the default chain: blocklist, language ID, Gopher, C4, FineWeb,
         bad words, PII) on every document in this process, one core;
  job:   the filter stage on local[N] with the same config, timed as the stage's `seconds`
         (SparkSession start not counted), cold (a fresh JVM) and warm (the same input again,
         --force); warm runs alternate with bare ones (--repeats pairs), each compared with
         the bare run just before it.
Each is reported by wall clock (documents / seconds / cores) and by CPU time (documents /
CPU-seconds of this process and all its children: the JVM, the Python workers).
Target: job per-core speed >= 0.85 x bare, as for the extract and tokenize stages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_time import add_job_arguments, alternate_with_bare, finish  # noqa: E402
from text_corpus import repeated, training_documents, write_documents  # noqa: E402

from curation.config import load_curation_config  # noqa: E402
from curation.filters.chain import FilterChain  # noqa: E402
from curation.spark.session import build_session  # noqa: E402
from jobs.filter import run_filter  # noqa: E402


def bare_speed(chain: FilterChain, texts: list[str]) -> tuple[float, float, int]:
    """(documents per wall second, per CPU second, documents kept) of the chain over `texts`."""
    started, cpu, kept = time.perf_counter(), time.process_time(), 0
    for i, text in enumerate(texts):
        doc = {"id": f"doc-{i:08d}", "url": f"https://bench.example/{i}", "host": "bench.example"}
        kept += chain.apply({**doc, "text": text}).reason is None
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(texts) / wall, len(texts) / cpu, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=40, help="megabytes of text")
    add_job_arguments(parser)
    args = parser.parse_args()
    texts = repeated(training_documents(), int(args.mb * 1e6))
    work = Path(tempfile.mkdtemp(prefix="filter-bench-"))
    write_documents(work / "docs", texts)
    size = sum(len(t.encode()) for t in texts)
    print(f"corpus: {len(texts)} documents, {size / 1e6:.1f} MB, in {work}")

    config = load_curation_config(overrides=[f"spark.master=local[{args.cores}]"])
    chain = FilterChain.from_config(config.filter)
    bare_speed(chain, texts[:50])  # load the language-ID model, warm the regexes
    spark = build_session(config.spark, "filter-bench")
    spark.sparkContext.setLogLevel("ERROR")
    kept: set[int] = set()  # the job keeps what the bare chain keeps, every run

    def job(name: str) -> tuple[int, float]:
        stats = run_filter(spark, config, [str(work / "docs")], str(work / "out"), True)
        assert stats["input"] == len(texts), (stats["input"], len(texts))
        kept.add(stats["kept"])
        return len(texts), stats["seconds"]

    def bare() -> tuple[float, float]:
        wall, cpu, bare_kept = bare_speed(chain, texts)
        kept.add(bare_kept)
        return wall, cpu

    try:
        runs = alternate_with_bare(job, bare, args.cores, args.repeats)
    finally:
        spark.stop()
    assert len(kept) == 1, kept
    print(f"{kept.pop()} of {len(texts)} documents kept by every run")
    finish({"mb": size / 1e6, "documents": len(texts), "runs": runs}, args.json)


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"total {time.time() - started:.0f} s")
