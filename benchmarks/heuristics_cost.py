"""CPU cost of the heuristic filters per document, on real text, against extraction's.

    python benchmarks/heuristics_cost.py [--repeats 5]

Documents: English Wikipedia articles (../shared/data/wikipedia: WikiText-2 raw test and
tokenized validation articles split at their top-level headings, and the one-article-per-line
enwiki sample) and the gold article texts of the scrapinghub extraction benchmark
(../shared/data/html/scrapinghub_aeb); a missing source is skipped. Each filter runs alone
on every document (its full cost, whatever it decides), then the four run as a chain in
FineWeb's order, stopping at the first rejection. Times are CPU time of this process (best
of `--repeats` passes), in µs per document, so other load on the machine inflates them less.
Extraction is timed the same way in the same process: decode + trafilatura with the default
settings on the scrapinghub pages whose gold texts are part of the corpus, so the share
"chain / extraction" compares the two on the same pages and the same CPU. Target: the whole
filter chain costs at most 10% of extraction.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curation.config import TrafilaturaConfig  # noqa: E402
from curation.extractor import extract_text  # noqa: E402
from curation.filters.base import DocumentFilter  # noqa: E402
from curation.filters.c4 import C4Filter  # noqa: E402
from curation.filters.fineweb import FineWebFilter  # noqa: E402
from curation.filters.gopher import GopherQualityFilter, GopherRepetitionFilter  # noqa: E402
from curation.http import decode_html  # noqa: E402

from html_corpus import scrapinghub_pages  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# WikiText's top-level heading line: " = Title = " (second-level ones are " = = Sub = = ").
WIKITEXT_TITLE = re.compile(r"^ = [^=].* = \r?$", re.MULTILINE)


def wikitext_articles(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    starts = [m.start() for m in WIKITEXT_TITLE.finditer(text)] + [len(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:], strict=False)]


def corpus() -> dict[str, list[str]]:
    """Source name -> document texts, for the sources present."""
    sources: dict[str, list[str]] = {}
    wiki = SHARED / "wikipedia"
    for name in ("wikitext2_raw_test_articles.txt", "wikitext2_valid_tokenized.txt"):
        if (wiki / name).exists():
            sources[name.removesuffix(".txt")] = wikitext_articles(wiki / name)
    demo = wiki / "llamafactory_wiki_demo.txt"
    if demo.exists():
        lines = demo.read_text(encoding="utf-8").splitlines()
        sources["llamafactory_wiki_demo"] = [line for line in lines if line.strip()]
    if (SHARED / "html" / "scrapinghub_aeb").exists():
        sources["scrapinghub_gold"] = [gold for _, _, gold in scrapinghub_pages()]
    return sources


def extraction_us_per_page() -> float | None:
    """CPU µs per scrapinghub page for decode + trafilatura (default settings), or None."""
    if not (SHARED / "html" / "scrapinghub_aeb").exists():
        return None
    options = asdict(TrafilaturaConfig())
    pages = scrapinghub_pages()
    extract_text(decode_html(pages[0][1], None)[0], pages[0][0], options)  # warm-up
    start = time.process_time()
    for url, html, _ in pages:
        extract_text(decode_html(html, None)[0], url, options)
    return (time.process_time() - start) / len(pages) * 1e6


def best_pass_us(steps: list[DocumentFilter], texts: list[str], repeats: int) -> float:
    """CPU µs per document of the steps as a chain (the first rejection stops it), best pass."""
    best = float("inf")
    for _ in range(repeats):
        docs = [{"text": text, "lang": "en"} for text in texts]  # C4 rewrites text in place
        start = time.process_time()
        for doc in docs:
            for step in steps:
                if step.filter(doc) is not None:
                    break
        best = min(best, time.process_time() - start)
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sources = corpus()
    if not sources:
        sys.exit(f"no text under {SHARED}: this benchmark needs ../shared/data")
    texts = [text for docs in sources.values() for text in docs]
    gold = sources.get("scrapinghub_gold", [])
    print(f"{len(texts)} documents:")
    for name, docs in sources.items():
        mean_words = sum(len(text.split()) for text in docs) / len(docs)
        print(f"  {name}: {len(docs)} documents, {mean_words:,.0f} words on average")

    steps: list[DocumentFilter] = [
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4Filter(),
        FineWebFilter(),
    ]
    print(f"\n{'filter':<18} {'µs/doc, all':>12} {'µs/doc, gold':>13}  decisions on all documents")
    for step in steps:
        decisions = Counter(step.filter({"text": t, "lang": "en"}) or "kept" for t in texts)
        top = ", ".join(f"{reason} {n}" for reason, n in decisions.most_common(4))
        print(
            f"{step.name:<18} {best_pass_us([step], texts, args.repeats):>12.0f} "
            f"{best_pass_us([step], gold, args.repeats) if gold else float('nan'):>13.0f}  {top}"
        )
    chain_all = best_pass_us(steps, texts, args.repeats)
    chain_gold = best_pass_us(steps, gold, args.repeats) if gold else float("nan")
    print(f"{'chain, in order':<18} {chain_all:>12.0f} {chain_gold:>13.0f}")
    extraction = extraction_us_per_page()
    if extraction is None:
        print("\nextraction not timed: ../shared/data/html/scrapinghub_aeb is absent")
        return
    print(f"\nextraction (decode + trafilatura), scrapinghub pages: {extraction:,.0f} µs/page")
    print(
        f"chain / extraction: {chain_gold / extraction:.1%} on the same pages' text, "
        f"{chain_all / extraction:.1%} for the whole corpus (target <= 10%)"
    )


if __name__ == "__main__":
    main()
