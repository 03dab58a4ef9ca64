"""Quality classifier on real data: held-out ROC-AUC, score distributions, scoring throughput.

    python benchmarks/quality_classifier.py [--seed 0] [--docs 5000] [--bucket N ...]

Positives: ../shared/data/wikipedia/ (WikiText-2 test articles split at " = Title = "
headings, the WikiText-2 validation articles in their tokenised form with <unk>, and 24 plain
enwiki articles). Negatives: pages extracted (by the extract stage, in local Spark) from the
WARCs in ../shared/data/warc/, C4 documents and SMS messages from ../shared/data/lowquality/.
The training set is built exactly as `refinery train-quality` builds it (balanced, length
matched, deduplicated, documents held out). Target: held-out ROC-AUC >= 0.95.
Throughput: `QualityModel.score` (normalisation + fastText predict) on one core, over `--docs`
documents drawn from both classes. Target: >= 2,000 docs/s per core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filter_quality import wikitext_articles  # noqa: E402

from curation.quality import MODEL_FILE, QualityModel  # noqa: E402
from curation.quality_training import TrainParams, read_texts, train_quality_model  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def positives() -> list[tuple[str, str]]:
    wiki = DATA / "wikipedia"
    docs = []
    for name in ("wikitext2_raw_test_articles.txt", "wikitext2_valid_tokenized.txt"):
        docs += [(f"{name}:{i}", t) for i, t in enumerate(wikitext_articles(wiki / name))]
    return docs + list(read_texts(str(wiki / "llamafactory_wiki_demo.txt")))


def crawl_pages(workdir: Path) -> list[tuple[str, str]]:
    """The extract stage run on ../shared/data/warc/ (malformed/ included: it yields errors)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from curation.config import load_curation_config
    from curation.inputs import resolve_inputs
    from curation.spark.session import build_session
    from jobs.extract import run_extract

    config = load_curation_config(overrides=["spark.master=local[2]"])
    spark = build_session(config.spark, "quality-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        run_extract(spark, config, resolve_inputs([str(DATA / "warc")], ""), str(workdir))
    finally:
        spark.stop()
    return list(read_texts(str(workdir / "extract")))


def negatives(workdir: Path) -> dict[str, list[tuple[str, str]]]:
    # a label, a tab, then the message: train-quality refuses a .tsv, whose labels it would
    # learn as text; the keys are those it gave the file's lines
    table = DATA / "lowquality" / "sms_spam_collection.tsv"
    sms = [
        (f"{table.name}:{number}", line.partition("\t")[2])
        for number, line in enumerate(table.read_text(encoding="utf-8").split("\n"), 1)
        if line.strip()
    ]
    return {
        "warc_pages": crawl_pages(workdir),
        "c4": list(read_texts(str(DATA / "lowquality" / "c4_demo_unlabeled_web.jsonl"))),
        "sms": sms[1:],  # header line
    }


def train_and_report(pos: list, neg: list, folder: Path, params: TrainParams) -> None:
    started = time.perf_counter()
    metrics = train_quality_model(pos, neg, folder, params)
    trained = time.perf_counter() - started
    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    print(f"passages train {counts['train']}, held out {counts['heldout']}")
    size = (folder / MODEL_FILE).stat().st_size
    print(f"trained in {trained:.1f} s (build + fastText, 1 thread); model {size / 2**20:,.1f} MiB")
    for key in ("roc_auc", "precision", "recall", "f1", "accuracy"):
        print(f"held-out {key:<9} {metrics[key]:.3f}")
    print("score histogram (10 bins over [0, 1]):")
    print(f"  Wikipedia  {metrics['histogram_positive']}")
    print(f"  crawl/web  {metrics['histogram_negative']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=int, default=5000, help="documents scored for throughput")
    parser.add_argument(
        "--bucket", type=int, nargs="+", default=[TrainParams.bucket], help="fastText buckets"
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: nothing to benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pos = positives()
        neg_sets = negatives(work / "run")
        print(f"positives: {len(pos)} Wikipedia articles")
        print("negatives: " + ", ".join(f"{k} {len(v)}" for k, v in neg_sets.items()))
        web = neg_sets["warc_pages"] + neg_sets["c4"]
        runs = {"all negatives": web + neg_sets["sms"], "web pages only (warc + c4)": web}
        for bucket in args.bucket:
            for name, neg in runs.items():
                print(f"--- {name}, {bucket:,} buckets")
                params = TrainParams(seed=args.seed, bucket=bucket)
                train_and_report(pos, neg, work / "model", params)

        model = QualityModel.load(work / "model")
        texts = [t for _, t in pos + web]
        rng = random.Random(args.seed)
        sample = [rng.choice(texts) for _ in range(args.docs)]
        mean_chars = sum(map(len, sample)) / len(sample)
        model.score(sample[:100])  # warm up
        started = time.perf_counter()
        cpu = time.process_time()
        model.score(sample)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"scoring: {args.docs} docs (mean {mean_chars:,.0f} chars) in {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU: {args.docs / wall:,.0f} docs/s wall, {args.docs / cpu:,.0f} docs/s "
            "per core of CPU time (one thread)"
        )


if __name__ == "__main__":
    main()
