"""Real HTML pages from ../shared/data/html for the extraction benchmarks."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

SHARED_HTML = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "html"


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} is not present: these benchmarks need ../shared/data/html")
    return path


def scrapinghub_pages(root: Path = SHARED_HTML) -> list[tuple[str, bytes, str]]:
    """(url, html bytes, gold article text) for the scrapinghub article-extraction benchmark."""
    base = require(root / "scrapinghub_aeb")
    truth = json.loads((base / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key, item in sorted(truth.items()):
        path = base / "html" / f"{key}.html.gz"
        if path.exists():
            pages.append((item["url"], gzip.decompress(path.read_bytes()), item["articleBody"]))
    return pages


def all_pages(root: Path = SHARED_HTML) -> list[tuple[str, bytes]]:
    """Every real page: scrapinghub, trafilatura's evaluation pages, readability's test pages."""
    pages = [(url, html) for url, html, _ in scrapinghub_pages(root)]
    evaldata = json.loads(
        (require(root / "trafilatura" / "evaldata.json")).read_text(encoding="utf-8")
    )
    for url, item in sorted(evaldata.items()):
        path = root / "trafilatura" / "pages" / f"{item['file']}.gz"
        if path.exists():
            if not url.startswith(("http://", "https://")):  # keys such as "hard::site.html"
                url = f"https://trafilatura-eval.example/{url.replace(':', '_')}"
            pages.append((url, gzip.decompress(path.read_bytes())))
    for folder in sorted((root / "readability").iterdir()):
        source = folder / "source.html.gz"
        if source.exists():
            pages.append(
                (f"https://readability.example/{folder.name}", gzip.decompress(source.read_bytes()))
            )
    return pages
