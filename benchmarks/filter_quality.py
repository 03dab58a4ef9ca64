"""What the filter chain keeps: Wikipedia (should survive), low-quality and web sets, and
language-ID accuracy on labelled pages.

    python benchmarks/filter_quality.py [--config FILE] [key=value ...]

Sets, all from ../shared/data (the script exits when it is absent):
  wikitext2      WikiText-2 test articles (Good/Featured), split at " = Title = " headings and
                 detokenised (" @-@ " -> "-", " , " -> ", ", ...). Target: share kept >= 0.90.
  wiki_demo      30 plain enwiki articles, one per line (no paragraph breaks).
  c4_web         C4 documents: web text that already passed C4's own filters.
  sms_ham/spam   UCI SMS messages: short texts that a web-page filter should not keep.
Language ID: Mozilla Readability's test pages that declare `lang` in their gold metadata,
scored on the gold article text (accuracy of the primary subtag, e.g. en-US -> en).
Blocklist is not exercised here (these texts have no crawl URLs): see filter_cost.py.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.config import load_curation_config  # noqa: E402
from curation.filters.chain import FilterChain  # noqa: E402
from curation.filters.language import LanguageFilter  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $")
# WikiText tokenisation undone: " @-@ " joins, spaces before punctuation and inside brackets.
DETOKENIZE = [
    (re.compile(r" @(.)@ "), r"\1"),
    (re.compile(r" ([.,;:!?)\]'](?:s\b)?)"), r"\1"),
    (re.compile(r"([(\[]) "), r"\1"),
]


def wikitext_articles(path: Path) -> list[str]:
    """WikiText-2 raw articles as plain text: headings `= = X = =` become lines `X`."""
    articles: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if WIKITEXT_TITLE.match(line):
            articles.append([])
        text = line.strip().strip("=").strip()
        if not articles or not text:
            continue
        for pattern, replacement in DETOKENIZE:
            text = pattern.sub(replacement, text)
        articles[-1].append(text)
    return ["\n".join(a) for a in articles if a]


def sets() -> dict[str, list[str]]:
    sms = [
        line.split("\t", 1)
        for line in (DATA / "lowquality" / "sms_spam_collection.tsv").read_text().splitlines()[1:]
        if "\t" in line
    ]
    return {
        "wikitext2": wikitext_articles(DATA / "wikipedia" / "wikitext2_raw_test_articles.txt"),
        "wiki_demo": [
            line
            for line in (DATA / "wikipedia" / "llamafactory_wiki_demo.txt").read_text().splitlines()
            if line.strip()
        ],
        "c4_web": [
            json.loads(line)["text"]
            for line in (DATA / "lowquality" / "c4_demo_unlabeled_web.jsonl")
            .read_text()
            .splitlines()
            if line.strip()
        ],
        "sms_ham": [text for label, text in sms if label == "ham"],
        "sms_spam": [text for label, text in sms if label == "spam"],
    }


def labelled_languages() -> list[tuple[str, str]]:
    """(gold primary language, gold article text) from Readability's test pages."""
    pages = []
    for folder in sorted((DATA / "html" / "readability").iterdir()):
        meta_path, gold_path = folder / "expected-metadata.json", folder / "expected.html.gz"
        if not meta_path.exists() or not gold_path.exists():
            continue
        lang = json.loads(meta_path.read_text(encoding="utf-8")).get("lang")
        if lang:
            text = lxml.html.fromstring(gzip.decompress(gold_path.read_bytes())).text_content()
            pages.append((lang.split("-")[0].lower(), text))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="curation YAML (default conf/curation/default.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is not present: this benchmark needs ../shared/data")
    config = load_curation_config(args.config, args.overrides)
    chain = FilterChain.from_config(config.filter)
    print(f"steps: {config.filter.steps}")
    for name, texts in sets().items():
        reasons, chars = Counter(), Counter()
        for i, text in enumerate(texts):
            doc = {"id": str(i), "url": None, "host": None, "text": text}
            reason = chain.apply(doc).reason
            reasons[reason or "kept"] += 1
            if reason is None:  # the line rules (C4) may have cut the kept text
                chars.update(before=len(text), after=len(doc["text"]))
        kept = reasons.pop("kept", 0)
        text_kept = chars["after"] / chars["before"] if chars["before"] else 0.0
        top = ", ".join(f"{r} {n}" for r, n in reasons.most_common(6))
        print(
            f"{name:<10} {len(texts):5d} docs  kept {kept / len(texts):6.1%} (their text "
            f"{text_kept:6.1%})  rejected: {top}"
        )
    language = next((s for s in chain.steps if isinstance(s, LanguageFilter)), None)
    if language:
        pages = labelled_languages()
        right = sum(language.predict(text)[0] == gold for gold, text in pages)
        golds = Counter(g for g, _ in pages)
        print(
            f"language ID: {right}/{len(pages)} = {right / len(pages):.1%} correct on "
            f"Readability pages ({dict(golds.most_common())})"
        )


if __name__ == "__main__":
    main()
