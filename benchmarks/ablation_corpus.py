"""The crawl of the curation-ablation benchmark: real pages plus the sample crawl at scale.

    python benchmarks/ablation_corpus.py --out runs/ablation-crawl [--docs 10000] [--seed 0]

Writes into --out: `real-pages.warc.gz` (every page of ../shared/data/html wrapped as a 200
response), a copy of each readable WARC/ARC/WET file of ../shared/data/warc (the malformed ones
are left out: they test error handling, not quality), and a sample crawl of --docs fetches
with its reference articles. Then, from the repo root (see docs/BENCHMARKS.md):

    refinery curate --input runs/ablation-crawl --output runs/ablation-run
    refinery ablate --config conf/ablate/tiny.yaml out=runs/ablation reference=... arms...
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curation.sample_crawl import (  # noqa: E402
    MIN_DOCS,
    write_reference_articles,
    write_sample_crawl,
)
from curation.warc import write_response_warc  # noqa: E402

from html_corpus import SHARED_HTML, all_pages  # noqa: E402

SHARED_WARC = SHARED_HTML.parent / "warc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--docs", type=int, default=10_000, help="sample-crawl fetches")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.docs < MIN_DOCS:  # before anything is written into --out
        parser.error(f"--docs must be at least {MIN_DOCS} so every page kind appears")
    args.out.mkdir(parents=True, exist_ok=True)
    pages = [(url.strip().replace(" ", "%20"), html) for url, html in all_pages()]
    write_response_warc(args.out / "real-pages.warc.gz", pages)
    copied = []
    for path in sorted(SHARED_WARC.iterdir()):
        if path.is_file():
            shutil.copyfile(path, args.out / path.name)
            copied.append(path.name)
    write_sample_crawl(args.out / "sample", docs=args.docs, seed=args.seed, files=8)
    write_reference_articles(args.out, seed=args.seed)
    print(f"{len(pages)} real pages, {len(copied)} shared crawl files, {args.docs} sample fetches")
    print(f"crawl in {args.out}")


if __name__ == "__main__":
    main()
