"""Extraction speed: bare trafilatura in one process vs the Spark extract job on local[N].

    python benchmarks/extract_throughput.py [--records 2000] [--cores 2] [--json out.json]

Wraps the real pages of ../shared/data/html into WARCs (repeating pages under new URLs to
reach --records), then reports documents per second per core for
  bare:  decode + trafilatura.extract in a loop, one process (the ceiling), and
  job:   the extract stage on local[N] (WARC parsing, HTTP decoding, the time-limited
         extraction process, Parquet writes, stats) from the first task to the committed
         run folder; the SparkSession start is not counted. The stage runs twice in one
         session: "cold" is the first run in a fresh JVM (it pays the JIT compiling Spark's
         code paths, several CPU-seconds), "warm" the second, the steady state of a long job.
Target: job per-core speed >= 0.85 x bare (Spark overhead <= 15%).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def bare_speed(pages: list[tuple[str, bytes]], options: dict) -> float:
    """Documents per second of decode + trafilatura in this process (one core)."""
    extract_text(pages[0][1].decode("utf-8", "replace"), pages[0][0], options)  # warm up imports
    started = time.perf_counter()
    for url, html in pages:
        text, _ = decode_html(html, None)
        extract_text(text, url, options)
    return len(pages) / (time.perf_counter() - started)


def job_speed(
    pages: list[tuple[str, bytes]], cores: int, files: int, workdir: Path
) -> tuple[float, dict]:
    from curation.spark.session import build_session
    from jobs.extract import run_extract

    crawl = workdir / "crawl"
    crawl.mkdir()
    per_file = -(-len(pages) // files)
    for i in range(files):
        write_response_warc(
            crawl / f"bench-{i:03d}.warc.gz", pages[i * per_file : (i + 1) * per_file]
        )
    config = load_curation_config(overrides=[f"spark.master=local[{cores}]"])
    spark = build_session(config.spark, "refinery-bench")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        inputs = sorted(str(p) for p in crawl.iterdir())
        speeds = []
        for run in ("cold", "warm"):
            started = time.perf_counter()
            stats = run_extract(spark, config, inputs, str(workdir / run))
            speeds.append(stats["input"] / (time.perf_counter() - started))
    finally:
        spark.stop()
    return speeds, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--files", type=int, default=16, help="WARC files (Spark tasks)")
    parser.add_argument(
        "--bare-records", type=int, help="records timed for bare speed (default: all, as the job)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    pages = corpus(args.records)
    options = asdict(load_curation_config().extract.trafilatura)
    bare = bare_speed(pages[: args.bare_records or len(pages)], options)
    with tempfile.TemporaryDirectory() as tmp:
        (cold, warm), stats = job_speed(pages, args.cores, args.files, Path(tmp))
    figures = {
        "records": args.records,
        "distinct_pages": len(all_pages()),
        "cores": args.cores,
        "bare_docs_per_s_per_core": round(bare, 2),
        "kept": stats["kept"],
        "rejected": stats["rejected"],
        "errors": stats["errors"],
    }
    print(f"bare trafilatura, 1 process   : {bare:7.1f} docs/s per core")
    for run, speed in (("cold", cold), ("warm", warm)):
        per_core = speed / args.cores
        figures[f"job_{run}_docs_per_s"] = round(speed, 2)
        figures[f"job_{run}_vs_bare"] = round(per_core / bare, 3)
        print(
            f"extract job, local[{args.cores}], {run}: {speed:7.1f} docs/s = "
            f"{per_core:.1f} per core = {per_core / bare:.3f} x bare (target >= 0.85)"
        )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
