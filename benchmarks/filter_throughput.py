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
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_time import cpu_seconds, median_ratios  # noqa: E402
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
    parser.add_argument("--cores", type=int, default=2, help="local[N] for the job")
    parser.add_argument("--repeats", type=int, default=3, help="bare + warm job pairs")
    parser.add_argument("--json", help="write the figures here")
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
    results = {"mb": size / 1e6, "documents": len(texts), "runs": []}
    print(f"{'':24}{'docs/s/core (wall)':>20}{'docs/CPU-s':>12}")

    def job(name: str, bare: tuple[float, float, int] | None) -> None:
        cpu = cpu_seconds()
        stats = run_filter(spark, config, [str(work / "docs")], str(work / "out"), True)
        cpu = cpu_seconds() - cpu
        assert stats["input"] == len(texts), (stats["input"], len(texts))
        per_core, per_cpu = len(texts) / stats["seconds"] / args.cores, len(texts) / cpu
        run = {"run": name, "job": [per_core, per_cpu], "seconds": stats["seconds"], "cpu": cpu}
        line = f"job {name}, local[{args.cores}]".ljust(24) + f"{per_core:>20,.0f}{per_cpu:>12,.0f}"
        line += f"  ({stats['seconds']:.1f} s, {cpu:.1f} CPU-s, {stats['kept']} kept"
        if bare:
            assert stats["kept"] == bare[2], (stats["kept"], bare[2])
            run.update(bare=list(bare[:2]), ratio=[per_core / bare[0], per_cpu / bare[1]])
            line += (
                f"; x the bare run before it: {run['ratio'][0]:.2f} wall, {run['ratio'][1]:.2f} CPU"
            )
        print(line + ")", flush=True)
        results["runs"].append(run)

    try:
        job("cold", None)
        # Bare and warm job runs alternate, so both see the same load on a shared machine.
        for _ in range(args.repeats):
            bare = bare_speed(chain, texts)
            print(f"bare, 1 core            {bare[0]:>20,.0f}{bare[1]:>12,.0f}", flush=True)
            job("warm", bare)
    finally:
        spark.stop()
    results["median_ratio"] = median_ratios(results["runs"])
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"total {time.time() - started:.0f} s")
