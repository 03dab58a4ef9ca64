"""Near-duplicate detection quality: pair precision and recall of the dedup stage.

    python benchmarks/dedup_quality.py [--families 400] [--copies 6] [--seed 0]

1. Planted corpus: real documents (benchmarks/dedup_corpus.py) each followed by `--copies`
   edited copies (word substitutions, deletions, insertions, boilerplate, reordered
   paragraphs) of random strength, so every pair's true Jaccard on the configured shingles is
   computed exactly. The real dedup decisions (local[2] Spark, conf/curation/default.yaml plus
   the variants below) put every document in a cluster; a pair is flagged when both documents
   end in the same cluster. Recall: flagged share of pairs with true Jaccard >= 0.85.
   Precision: 1 - (flagged pairs with true Jaccard < 0.6) / flagged pairs.
   Targets: recall >= 0.95, precision >= 0.95.
2. Clough & Stevenson (../shared/data/near_duplicates): each answer paired with its Wikipedia
   source; the share flagged per label (cut / light / heavy / non).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup_corpus import SHARED, base_documents, edit  # noqa: E402

from curation.config import load_curation_config  # noqa: E402
from curation.dedup.minhash import ShingleSpec, jaccard, shingles  # noqa: E402
from curation.spark.dedup import dedup_decisions  # noqa: E402
from curation.spark.session import build_session  # noqa: E402

VARIANTS = {
    "numpy, verify 0.7 (default)": [],
    "numpy, no verify": ["dedup.verify=false"],
    "datasketch, verify 0.7": ["dedup.minhash.implementation=datasketch"],
}


def planted_corpus(families: int, copies: int, seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, family = [], []
    for f, doc in enumerate(base_documents()[:families]):
        texts.append(doc)
        family.append(f)
        for _ in range(copies):
            texts.append(edit(doc, rng, strength=rng.choice([0.005, 0.01, 0.02, 0.05, 0.1, 0.2])))
            family.append(f)
    return texts, family


def clusters(spark, texts: list[str], overrides: list[str]) -> list[str]:
    config = load_curation_config(overrides=overrides)
    rows = [
        (f"d{i:06d}", f"https://example.test/{i}", text, datetime(2024, 1, 1, tzinfo=UTC))
        for i, text in enumerate(texts)
    ]
    docs = spark.createDataFrame(rows, "id string, url string, text string, fetch_time timestamp")
    decided = {r["id"]: r["cluster_id"] for r in dedup_decisions(docs, config.dedup).collect()}
    return [decided[f"d{i:06d}"] for i in range(len(texts))]


def pair_scores(texts, family, cluster, spec) -> dict[str, float]:
    sets = [shingles(t, spec) for t in texts]
    members = defaultdict(list)
    for i, f in enumerate(family):
        members[f].append(i)
    true_pairs = {
        (i, j): jaccard(sets[i], sets[j]) for m in members.values() for i, j in combinations(m, 2)
    }
    by_cluster = defaultdict(list)
    for i, c in enumerate(cluster):
        by_cluster[c].append(i)
    flagged = [pair for m in by_cluster.values() for pair in combinations(m, 2)]
    similar = [p for p, s in true_pairs.items() if s >= 0.85]
    found = sum(cluster[i] == cluster[j] for i, j in similar)
    false = sum(
        (true_pairs[p] if p in true_pairs else jaccard(sets[p[0]], sets[p[1]])) < 0.6
        for p in flagged
    )
    return {
        "pairs >= 0.85": len(similar),
        "recall": found / max(1, len(similar)),
        "flagged": len(flagged),
        "false (< 0.6)": false,
        "precision": 1 - false / max(1, len(flagged)),
    }


def answer_text(path: Path) -> str:
    """The corpus is Windows-1252 (SOURCES.md), but a few files are UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def clough_stevenson(spark, overrides: list[str]) -> None:
    folder = SHARED / "near_duplicates" / "clough_stevenson"
    labels = list(csv.DictReader((folder / "file_information.csv").open(encoding="utf-8")))
    names = [row["File"] for row in labels] + sorted(p.name for p in folder.glob("orig_*.txt"))
    texts = [answer_text(folder / n) for n in names]
    cluster = dict(zip(names, clusters(spark, texts, overrides), strict=True))
    spec = ShingleSpec()
    setting = ", ".join(overrides) or "default"
    print(f"\nClough & Stevenson: answers flagged with their source ({setting})")
    by_label = defaultdict(list)
    for row in labels:
        source = f"orig_task{row['Task']}.txt"
        truth = jaccard(
            shingles(answer_text(folder / row["File"]), spec),
            shingles(answer_text(folder / source), spec),
        )
        by_label[row["Category"]].append((cluster[row["File"]] == cluster[source], truth))
    for label in ("cut", "light", "heavy", "non"):
        items = by_label[label]
        flagged = sum(f for f, _ in items)
        mean_j = sum(j for _, j in items) / len(items)
        print(f"  {label:6} {flagged:2d}/{len(items):2d} flagged   mean true Jaccard {mean_j:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=400)
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-planted", action="store_true", help="only Clough & Stevenson")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not present: this benchmark needs ../shared/data")
    texts, family = planted_corpus(args.families, args.copies, args.seed)
    print(f"planted corpus: {len(texts)} documents in {len(set(family))} families")
    config = load_curation_config(overrides=["spark.master=local[2]"])
    spark = build_session(config.spark, "dedup-quality")
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    try:
        spec = ShingleSpec()
        for name, overrides in {} if args.skip_planted else VARIANTS.items():
            started = time.time()
            scores = pair_scores(texts, family, clusters(spark, texts, overrides), spec)
            figures = "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()
            )
            print(f"{name:30} {figures}  ({time.time() - started:.0f} s)")
        clough_stevenson(spark, [])
        clough_stevenson(spark, ["dedup.verify=false"])
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
