"""Real-text documents for the dedup benchmarks: Wikipedia articles and gold article bodies.

`base_documents` reads ../shared/data/wikipedia (WikiText articles split at their `= Title =`
lines, the LLaMA-Factory wiki demo one article per line) and the scrapinghub gold texts; `edit`
makes a planted near duplicate with controlled edits.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TITLE = re.compile(r"^ = [^=].* = $")
EDITS = ["substitute", "delete", "insert", "boilerplate", "reorder"]
BOILERPLATE = [
    "Share this article on Facebook Twitter and LinkedIn.",
    "Subscribe to our newsletter for the latest updates and exclusive offers.",
    "This site uses cookies to improve your experience. Accept all cookies.",
    "Copyright 2024 All rights reserved. Terms of use. Privacy policy.",
    "Related posts: you may also like these stories from our editors.",
]


def base_documents(min_words: int = 150) -> list[str]:
    """Distinct real documents of at least `min_words` words, in a fixed order."""
    docs: list[str] = []
    wikitext = (SHARED / "wikipedia" / "wikitext2_raw_test_articles.txt").read_text("utf-8")
    article: list[str] = []
    for line in wikitext.splitlines():
        if TITLE.match(line) and article:
            docs.append("\n".join(article))
            article = []
        if line.strip():
            article.append(line.strip())
    docs.append("\n".join(article))
    demo = (SHARED / "wikipedia" / "llamafactory_wiki_demo.txt").read_text("utf-8")
    docs += [line for line in demo.splitlines() if line.strip()]
    gold = json.loads((SHARED / "html" / "scrapinghub_aeb" / "ground-truth.json").read_text())
    docs += [page["articleBody"] for _, page in sorted(gold.items())]
    seen: set[str] = set()
    unique = []
    for doc in docs:
        if len(doc.split()) >= min_words and doc not in seen:
            seen.add(doc)
            unique.append(doc)
    return unique


def edit(text: str, rng: random.Random, strength: float) -> str:
    """A copy of `text` with about `strength` of its words touched by one or more of: word
    substitutions, deletions, insertions, boilerplate lines added, paragraphs reordered."""
    paragraphs = [p.split() for p in text.split("\n") if p.split()]
    vocabulary = [w for p in paragraphs for w in p]
    kinds = rng.sample(EDITS, rng.randint(1, 3))
    edits = max(1, round(strength * len(vocabulary)))
    for kind in kinds:
        if kind == "reorder" and len(paragraphs) > 1:
            rng.shuffle(paragraphs)
        elif kind == "boilerplate":
            for _ in range(rng.randint(1, 3)):
                paragraphs.insert(rng.choice([0, len(paragraphs)]), rng.choice(BOILERPLATE).split())
        else:
            for _ in range(edits // len(kinds) + 1):
                words = rng.choice(paragraphs)
                i = rng.randrange(len(words) + (kind == "insert"))
                if kind == "substitute" and i < len(words):
                    words[i] = rng.choice(vocabulary)
                elif kind == "delete" and len(words) > 1 and i < len(words):
                    del words[i]
                elif kind == "insert":
                    words.insert(i, rng.choice(vocabulary))
    return "\n".join(" ".join(p) for p in paragraphs)
