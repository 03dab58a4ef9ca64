"""Speed of hashing training documents' n-grams for the contamination check, per document.

    python benchmarks/contamination_hashing.py [--words 700] [--documents 300]

Every document of a checked stage is normalised and its word n-grams hashed at each length
the item index holds (8 to 13 words for ../shared/data/mc_eval), in the Spark tasks: this is
the check's cost per document. Documents are cut from the Wikipedia text in
../shared/data/wikipedia (`--words` words each, about a web page's), after one warm-up call
builds the normalisation table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.contamination import normalise, text_ngram_hashes  # noqa: E402

WIKIPEDIA = (
    Path(__file__).resolve().parents[2]
    / "shared" / "data" / "wikipedia" / "wikitext2_raw_test_articles.txt"
)  # fmt: skip
LENGTHS = tuple(range(8, 14))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=700)
    parser.add_argument("--documents", type=int, default=300)
    args = parser.parse_args()
    if not WIKIPEDIA.exists():
        sys.exit(f"{WIKIPEDIA} is missing (../shared/data is not beside the checkout)")
    words = WIKIPEDIA.read_text(encoding="utf-8").split()
    step = args.words
    docs = [" ".join(words[i : i + step]) for i in range(0, len(words) - step, step)]
    docs = docs[: args.documents]
    normalise("warm-up")  # builds the translation table once per process
    hashing = f"n-gram hashes, lengths {LENGTHS[0]}-{LENGTHS[-1]}"
    for label, work in (
        ("normalise only", normalise),
        (hashing, lambda doc: text_ngram_hashes(doc, LENGTHS)),
    ):
        start = time.perf_counter()
        hashes = sum(len(work(doc)) for doc in docs)
        seconds = time.perf_counter() - start
        print(
            f"{label}: {len(docs)} documents of {step} words, {seconds / len(docs) * 1e3:.2f} ms "
            f"each ({len(docs) / seconds:,.0f}/s; {hashes:,} items out)"
        )


if __name__ == "__main__":
    main()
