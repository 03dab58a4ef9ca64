"""Contamination of ../shared/data/mc_eval/ items in a curated run, and recall on planted items.

    python -m refinery curate --input ../shared/data/warc --output /tmp/judge-warc-run
    python benchmarks/contamination.py --run /tmp/judge-warc-run [--stages extract dedup mix tokens]

1. For each stage output of the run (documents Parquet, or OUT/tokens decoded): the share of
   benchmark items (question + each choice, word 13-grams, jobs/contamination.py) that overlap
   any document, per benchmark family, with the wall time of the Spark pass (local[2]).
   It prints the size of the item index the job broadcasts first.
2. Recall: `--plant` checkable items (with n-grams of their own) drawn at random (seeded) are
   pasted, question and their wordiest choice, into random documents of the last documents
   stage; every planted item must be found (other items sharing 13-grams with them count too).
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.config import load_curation_config  # noqa: E402
from curation.contamination import build_index, normalise  # noqa: E402
from curation.spark.contamination import broadcast_index  # noqa: E402
from curation.spark.session import build_session  # noqa: E402
from jobs.contamination import check_contamination, eval_items  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def family(benchmark_dir: Path, stem: str) -> str:
    """mmlu_redux / piqa / agieval_en: the folder a benchmark file lives in."""
    found = next(benchmark_dir.rglob(f"{stem}.*"))
    return found.parent.name


def print_report(report: dict, benchmark_dir: Path, seconds: float) -> None:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for stem, row in report["benchmarks"].items():
        total = totals[family(benchmark_dir, stem)]
        total[0] += row["items"]
        total[1] += row["unchecked"]
        total[2] += row["contaminated"]
        if row["contaminated"]:
            print(f"    {stem}: {row['contaminated_items']}")
    docs = report["documents"]
    print(
        f"  {docs['input']} documents, {docs['contaminated']} contaminated, "
        f"{report['template_ngrams_ignored']} template n-grams ignored, "
        f"Spark pass {seconds:.1f} s"
    )
    for name, (items, unchecked, hit) in sorted(totals.items()):
        share = 100 * hit / items if items else 0.0
        print(
            f"  {name:<12} {items:>6} items checked, {unchecked:>4} unchecked, "
            f"{hit:>3} hit = {share:.2f}%"
        )


def plant(docs_dir: str, items, count: int, seed: int, out: Path) -> list[str]:
    """A copy of the documents with `count` checkable items pasted into random documents."""
    table = pq.read_table(docs_dir)
    texts = table.column("text").to_pylist()
    rng = random.Random(seed)
    unchecked = {key for keys in build_index(items).unchecked.values() for key in keys}
    chosen = rng.sample([i for i in items if i.choices and i.key not in unchecked], count)
    for item in chosen:
        doc = rng.randrange(len(texts))
        wordiest = max(item.choices, key=lambda c: len(normalise(c)))
        texts[doc] = f"{texts[doc]}\n\n{item.question} {wordiest}\n"
    index = table.column_names.index("text")
    table = table.set_column(index, "text", [texts])
    out.mkdir(parents=True)
    pq.write_table(table, out / "part-0.parquet")
    return sorted(item.key for item in chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="/tmp/judge-warc-run", help="a curated run folder")
    parser.add_argument("--stages", nargs="+", default=["extract", "dedup", "mix", "tokens"])
    parser.add_argument("--benchmarks", default=str(SHARED / "mc_eval"))
    parser.add_argument("--plant", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    benchmark_dir = Path(args.benchmarks)
    run = Path(args.run)
    stages = [
        s
        for s in args.stages
        if (run / s / "_SUCCESS").exists() or (run / s / "manifest.json").exists()
    ]
    if not benchmark_dir.exists() or not stages:
        print(f"skipped: need {benchmark_dir} and a curated run at {args.run}")
        return 0
    config = load_curation_config(overrides=["spark.master=local[2]"])
    started = time.time()
    items = eval_items(str(benchmark_dir))
    print(f"{len(items)} benchmark items read in {time.time() - started:.1f} s")
    index = build_index(items)
    size = len(pickle.dumps(broadcast_index(index))) / 1e6
    print(f"index: {len(index.ngrams):,} distinct n-gram hashes, broadcast {size:.1f} MB pickled")
    spark = build_session(config.spark, "benchmark-contamination")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for stage in stages:
            print(f"{args.run}/{stage}:")
            started = time.time()
            report = check_contamination(spark, config, [f"{args.run}/{stage}"], items)
            print_report(report, benchmark_dir, time.time() - started)
        with tempfile.TemporaryDirectory() as tmp:
            planted_dir = Path(tmp) / "planted"
            source = [s for s in stages if s != "tokens"][-1]
            planted = plant(f"{args.run}/{source}", items, args.plant, args.seed, planted_dir)
            report = check_contamination(spark, config, [str(planted_dir)], items)
            found = {k for row in report["benchmarks"].values() for k in row["contaminated_items"]}
            recall = len(found & set(planted)) / len(planted)
            print(
                f"planted {len(planted)} items into {source}: recall {100 * recall:.1f}%, "
                f"{len(found - set(planted))} other items hit"
            )
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
