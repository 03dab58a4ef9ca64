"""Real text from ../shared/data for the tokenizer benchmarks: web and Wikipedia documents.

Training text ("curated" stand-in): the C4 sample (web pages) and the WikiText-2 raw test
articles. Held out: the LLaMA-Factory Wikipedia demo articles, plain Wikipedia prose that
the tokenizer never sees.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
ARTICLE_TITLE = re.compile(r"^ = [^=].* = $", re.MULTILINE)  # WikiText " = Title = " lines


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} is not present: these benchmarks need ../shared/data")
    return path


def training_documents() -> list[str]:
    """C4 web pages and WikiText-2 articles (about 1.6 MB of distinct text)."""
    c4 = require(SHARED / "lowquality" / "c4_demo_unlabeled_web.jsonl")
    docs = [json.loads(line)["text"] for line in c4.read_text(encoding="utf-8").splitlines()]
    wiki = require(SHARED / "wikipedia" / "wikitext2_raw_test_articles.txt").read_text("utf-8")
    starts = [m.start() for m in ARTICLE_TITLE.finditer(wiki)] + [len(wiki)]
    articles = (wiki[a:b].strip() for a, b in zip(starts, starts[1:], strict=False))
    docs += [article for article in articles if article]
    return docs


def heldout_wikipedia() -> list[str]:
    path = require(SHARED / "wikipedia" / "llamafactory_wiki_demo.txt")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def repeated(docs: list[str], total_bytes: int) -> list[str]:
    """`docs` repeated in order until they hold `total_bytes` of UTF-8 text."""
    out, size = [], 0
    while size < total_bytes:
        doc = docs[len(out) % len(docs)]
        out.append(doc)
        size += len(doc.encode())
    return out


def write_documents(path: Path, texts: list[str], files: int = 8) -> None:
    """A documents Parquet (DESIGN.md columns) holding `texts`, ids unique per copy."""
    n = len(texts)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    table = pa.table(
        {
            "id": [f"doc-{i:08d}" for i in range(n)],
            "url": [f"https://bench.example/{i}" for i in range(n)],
            "host": ["bench.example"] * n,
            "text": texts,
            "source": ["benchmark"] * n,
            "record_id": [f"<urn:uuid:{i}>" for i in range(n)],
            "fetch_time": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "offset": pa.array(range(n), pa.int64()),
        }
    )
    path.mkdir(parents=True, exist_ok=True)
    step = -(-n // files)
    for i in range(files):  # several parts, as a stage writes them: one Spark task each
        pq.write_table(table.slice(i * step, step), path / f"part-{i:05d}.parquet")
