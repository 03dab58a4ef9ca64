"""Extraction speed: bare trafilatura in one process vs the Spark extract job on local[N].

    python benchmarks/extract_throughput.py [--records 2000] [--files 16] [--repeats 3] [--json F]

Wraps the real pages of ../shared/data/html into WARCs (repeating pages under new URLs to
reach --records), then reports documents per second per core for
  bare:  decode + trafilatura.extract in a loop, one process (the ceiling), and
  job:   the extract stage on local[N] (WARC parsing, HTTP decoding, the time-limited
         extraction process, Parquet writes, stats) from the first task to the committed
         run folder; the SparkSession start is not counted. "cold" is the first run in a
         fresh JVM (it pays the JIT compiling Spark's code paths), then warm runs alternate
         with bare ones (--repeats pairs), each compared with the bare run just before it.
Both by wall clock (documents / seconds / cores) and by CPU time (documents / CPU-seconds of
this process and all it started: the JVM, Python workers, extraction processes).
Target: job per-core speed >= 0.85 x bare (Spark overhead <= 15%).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_time import add_job_arguments, alternate_with_bare, finish  # noqa: E402

from curation.config import load_curation_config  # noqa: E402
from curation.extractor import extract_text  # noqa: E402
from curation.http import decode_html  # noqa: E402
from curation.warc import write_response_warc  # noqa: E402

from html_corpus import all_pages  # noqa: E402


def corpus(records: int) -> list[tuple[str, bytes]]:
    pages = [(url.strip().replace(" ", "%20"), html) for url, html in all_pages()]
    return [
        (f"{url}{'&' if '?' in url else '?'}copy={i // len(pages)}", html)
        for i, (url, html) in ((i, pages[i % len(pages)]) for i in range(records))
    ]


def bare_speed(pages: list[tuple[str, bytes]], options: dict) -> tuple[float, float]:
    """(documents per wall second, per CPU second) of decode + trafilatura in this process."""
    extract_text(pages[0][1].decode("utf-8", "replace"), pages[0][0], options)  # warm up imports
    started, cpu = time.perf_counter(), time.process_time()
    for url, html in pages:
        text, _ = decode_html(html, None)
        extract_text(text, url, options)
    return len(pages) / (time.perf_counter() - started), len(pages) / (time.process_time() - cpu)


def write_crawl(pages: list[tuple[str, bytes]], files: int, crawl: Path) -> list[str]:
    crawl.mkdir()
    per_file = -(-len(pages) // files)
    for i in range(files):
        write_response_warc(
            crawl / f"bench-{i:03d}.warc.gz", pages[i * per_file : (i + 1) * per_file]
        )
    return sorted(str(p) for p in crawl.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    add_job_arguments(parser)
    parser.add_argument("--files", type=int, default=16, help="WARC files (Spark tasks)")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from curation.spark.session import build_session
    from jobs.extract import run_extract

    pages = corpus(args.records)
    config = load_curation_config(overrides=[f"spark.master=local[{args.cores}]"])
    options = asdict(config.extract.trafilatura)
    figures: dict = {"records": args.records, "files": args.files, "cores": args.cores}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = write_crawl(pages, args.files, Path(tmp) / "crawl")
        spark = build_session(config.spark, "refinery-bench")
        spark.sparkContext.setLogLevel("ERROR")

        def job(name: str) -> tuple[int, float]:
            started = time.perf_counter()
            stats = run_extract(spark, config, inputs, f"{tmp}/{name}", force=True)
            figures.update(kept=stats["kept"], rejected=stats["rejected"], errors=stats["errors"])
            return stats["input"], time.perf_counter() - started

        try:
            runs = alternate_with_bare(
                job, lambda: bare_speed(pages, options), args.cores, args.repeats
            )
        finally:
            spark.stop()
    finish({**figures, "runs": runs}, args.json)


if __name__ == "__main__":
    main()
