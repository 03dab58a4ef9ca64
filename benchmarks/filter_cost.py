"""Cost of the filter chain next to trafilatura's, on documents extracted from real pages.

    python benchmarks/filter_cost.py [--config FILE] [key=value ...]

Pages: every real page in ../shared/data/html (the extract benchmarks' corpus). Each page is
decoded and extracted with trafilatura in this process (timed), then the configured filter
chain runs on the extracted documents as the Spark stage runs it (stopping at the first
rejection), and every step also runs alone on every document (its cost when nothing before
it rejects). Each timing is the median of --repeats passes (the machine's load varies).
Target: chain time <= 10% of trafilatura's time on the same documents.
Also: URL-blocklist lookups per second with every UT1 list in ../shared/data/blocklist loaded.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curation.config import load_curation_config  # noqa: E402
from curation.extractor import extract_text  # noqa: E402
from curation.filters.blocklist import (  # noqa: E402
    BlocklistConfig,
    BlocklistFilter,
    list_files,
    normalize_host,
    read_list,
)
from curation.filters.chain import FilterChain  # noqa: E402
from curation.http import decode_html  # noqa: E402

from html_corpus import all_pages  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def extracted_documents(options: dict, repeats: int = 1) -> tuple[list[dict], float]:
    """Documents trafilatura extracts from the real pages, and the median seconds it took
    over `repeats` passes (pages that yield no text count: the stage pays for them too)."""
    pages = [(url, decode_html(html, None)[0]) for url, html in all_pages()]
    extract_text(pages[0][1], pages[0][0], options)  # warm imports
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        texts = [extract_text(text, url, options) for url, text in pages]
        passes.append(time.perf_counter() - started)
    docs = [
        {"id": str(i), "url": url, "host": urlsplit(url).hostname, "text": text}
        for i, ((url, _), text) in enumerate(zip(pages, texts, strict=True))
        if text and text.strip()
    ]
    return docs, statistics.median(passes)


def median_seconds(run, docs: list[dict], repeats: int) -> float:
    """Median seconds of `run(doc)` over every document (fresh copies each pass)."""
    passes = []
    for _ in range(repeats):
        batch = copy.deepcopy(docs)
        started = time.perf_counter()
        for doc in batch:
            run(doc)
        passes.append(time.perf_counter() - started)
    return statistics.median(passes)


def time_chain(
    chain: FilterChain, docs: list[dict], repeats: int
) -> tuple[float, dict[str, float]]:
    """Seconds for the chain as the stage runs it, and for each step alone on every document."""
    total = median_seconds(chain.apply, docs, repeats)
    alone = {step.name: median_seconds(step.filter, docs, repeats) for step in chain.steps}
    return total, alone


def listed_domains(config: BlocklistConfig) -> list[str]:
    """Every domain the configured UT1 folders list, normalised and sorted."""
    folders, _ = list_files(config)
    found = {
        normalize_host(entry)
        for _, folder in folders
        if (folder / "domains").exists()
        for entry in read_list(folder / "domains")
    }
    return sorted(found)


def blocklist_lookups_per_second(urls: list[str], lookups: int = 200_000) -> tuple[float, int, int]:
    """Lookups per second over real URLs and listed hosts (half each), entries loaded, hits."""
    ut1 = SHARED / "blocklist" / "ut1"
    config = BlocklistConfig(
        lists_dir=str(ut1),
        categories=sorted(p.name for p in ut1.iterdir() if p.is_dir()),
        domain_files={"adult": [str(SHARED / "blocklist" / "pi_blocklist_porn_top1m.list")]},
    )
    step = BlocklistFilter.from_config(config)
    rng = random.Random(0)
    listed = rng.sample(listed_domains(config), 1000)
    sample = [rng.choice(urls) for _ in range(lookups // 2)]
    sample += [f"https://www.{rng.choice(listed)}/a/b.html" for _ in range(lookups // 2)]
    started = time.perf_counter()
    blocked = sum(1 for url in sample if step.match(url, None))
    rate = len(sample) / (time.perf_counter() - started)
    return rate, len(step.domains) + len(step.urls), blocked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="curation YAML (default conf/curation/default.yaml)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per timing (median)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    config = load_curation_config(args.config, args.overrides)
    options = asdict(config.extract.trafilatura)
    docs, trafilatura_seconds = extracted_documents(options, args.repeats)
    chain = FilterChain.from_config(config.filter)
    chain.apply(dict(docs[0]))  # load the language model outside the timing
    total, alone = time_chain(chain, docs, args.repeats)
    n = len(docs)
    print(f"documents extracted from real pages: {n}")
    print(f"trafilatura  : {trafilatura_seconds / n * 1e3:8.3f} ms/doc")
    print(
        f"filter chain : {total / n * 1e3:8.3f} ms/doc = "
        f"{total / trafilatura_seconds:.1%} of trafilatura (target <= 10%)"
    )
    for name, seconds in alone.items():
        print(f"  {name:<18} alone: {seconds / n * 1e3:7.3f} ms/doc")
    if (SHARED / "blocklist" / "ut1").exists():
        rate, entries, blocked = blocklist_lookups_per_second([d["url"] for d in docs])
        print(f"blocklist: {entries} UT1 entries loaded, {rate:,.0f} lookups/s ({blocked} blocked)")


if __name__ == "__main__":
    main()
