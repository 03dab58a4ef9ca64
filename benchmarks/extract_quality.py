"""Extraction quality against the gold article text of the scrapinghub benchmark.

    python benchmarks/extract_quality.py [--settings] [--json out.json]

Wraps ../shared/data/html/scrapinghub_aeb pages into a WARC, runs the real extract job
(local Spark, conf/curation/default.yaml) on it, and scores the text kept for each page
against the gold `articleBody`: token-level precision, recall and F1 over bags of word
tokens (lower-cased \\w+ runs), averaged over pages; a page the job rejects scores 0.
`--settings` also scores bare trafilatura under alternative settings, to show why the
defaults were chosen. Target: mean F1 >= 0.94.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curation.config import TrafilaturaConfig, load_curation_config  # noqa: E402
from curation.extractor import extract_text  # noqa: E402
from curation.http import decode_html  # noqa: E402
from curation.warc import write_response_warc  # noqa: E402

from html_corpus import scrapinghub_pages  # noqa: E402

TOKEN = re.compile(r"\w+")

ALTERNATIVES = {
    "default (ours)": TrafilaturaConfig(),
    "favor_precision": TrafilaturaConfig(favor_precision=True),
    "favor_recall": TrafilaturaConfig(favor_recall=True),
    "fast (no fallback)": TrafilaturaConfig(fast=True),
    "include_comments": TrafilaturaConfig(include_comments=True),
    "no tables": TrafilaturaConfig(include_tables=False),
}


def prf(predicted: str | None, gold: str) -> tuple[float, float, float]:
    got, want = (
        Counter(TOKEN.findall((predicted or "").lower())),
        Counter(TOKEN.findall(gold.lower())),
    )
    overlap = sum((got & want).values())
    if not got or not want or not overlap:
        return 0.0, 0.0, 0.0
    p, r = overlap / sum(got.values()), overlap / sum(want.values())
    return p, r, 2 * p * r / (p + r)


def summary(scores: list[tuple[float, float, float]]) -> dict[str, float]:
    return {
        name: round(mean(s[i] for s in scores), 4)
        for i, name in enumerate(("precision", "recall", "f1"))
    }


def job_texts(pages, workdir: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    from curation.spark.session import build_session
    from jobs.extract import run_extract

    warc = workdir / "aeb.warc.gz"
    write_response_warc(warc, [(url, html) for url, html, _ in pages])
    config = load_curation_config(overrides=["spark.master=local[2]"])
    spark = build_session(config.spark, "refinery-bench-quality")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        run_extract(spark, config, [str(warc)], str(workdir / "out"))
    finally:
        spark.stop()
    return {
        row["url"]: row["text"] for row in pq.read_table(workdir / "out" / "extract").to_pylist()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", action="store_true", help="also score alternative settings")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    pages = scrapinghub_pages()
    with tempfile.TemporaryDirectory() as tmp:
        texts = job_texts(pages, Path(tmp))
    figures = {"pages": len(pages), "kept": len(texts)}
    figures["job"] = summary([prf(texts.get(url), gold) for url, _, gold in pages])
    print(f"extract job on {len(pages)} pages ({len(texts)} kept): {figures['job']}")
    if args.settings:
        figures["bare_trafilatura"] = {}
        for name, options in ALTERNATIVES.items():
            scores = [
                prf(extract_text(decode_html(html, None)[0], url, asdict(options)), gold)
                for url, html, gold in pages
            ]
            figures["bare_trafilatura"][name] = summary(scores)
            print(f"  bare trafilatura {name:<20}: {figures['bare_trafilatura'][name]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
