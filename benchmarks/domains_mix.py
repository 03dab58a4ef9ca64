"""Domain classifier accuracy on hosts it never saw (host-grouped cross-validation), and
the mixture planned for target proportions, on real pages.

    python benchmarks/domains_mix.py [--seed 0] [--folds 5] [--documents OUT/dedup]

Pages with their real URLs, from ../shared/data: the Zyte article-extraction benchmark (gold
article text), the trafilatura evaluation pages (title + description + gold snippets), and the
Wikipedia articles (URL rebuilt from the title). The URL rules of conf/domain_rules.yaml label
what they can; the classifier is trained on those labels from text only and measured by
host-grouped cross-validation (every labelled host's pages predicted once, by a model that never
saw the host): accuracy, balanced accuracy and macro-F1 next to the majority-label baseline, the
per-label confusion, and the same figures for the model variants it was chosen against (the
stage's `_classify.json` reports the shipped model's figures the same way). Then every page is
labelled (rule, else classifier, else `other`), and the mixture is planned for the targets
below: the weights and the epochs each domain is repeated (the loader realising the weights
is tested in tests/training/test_data.py). `--documents` measures the same on a documents
Parquet instead (e.g. a sample-crawl run's `OUT/dedup`, the classify stage's input).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filter_quality import WIKITEXT_TITLE  # noqa: E402

from curation.domains import (  # noqa: E402
    DomainClassifier,
    DomainConfig,
    DomainLabeller,
    DomainRules,
    cross_validate,
    train_domain_classifier,
)
from curation.mix import AnnealConfig, MixConfig, plan_mixture  # noqa: E402
from curation.quality import model_line  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# One set the corpus can meet, one that asks `other` (1% of tokens) for 40%: capped at 4 epochs.
TARGET_SETS = {
    "reachable": {"encyclopedic": 0.55, "news": 0.42, "other": 0.03},
    "capped": {"encyclopedic": 0.2, "news": 0.7, "other": 0.1},
}


def pages() -> list[dict]:
    out = []
    truth = json.loads((DATA / "html" / "scrapinghub_aeb" / "ground-truth.json").read_text())
    out += [{"url": v["url"], "text": v["articleBody"]} for v in truth.values()]
    evaldata = json.loads((DATA / "html" / "trafilatura" / "evaldata.json").read_text())
    for url, v in evaldata.items():
        if url.startswith("http"):
            text = "\n".join([v.get("title", ""), v.get("description", ""), *v["with"]])
            out.append({"url": url, "text": text})
    raw = DATA / "wikipedia" / "wikitext2_raw_test_articles.txt"
    title, lines = None, []
    for line in [*raw.read_text(encoding="utf-8").splitlines(), " = END = "]:
        if WIKITEXT_TITLE.match(line):
            if title:
                url = f"https://en.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}"
                out.append({"url": url, "text": "\n".join(lines)})
            title, lines = line.strip(" ="), []
        elif line.strip():
            lines.append(line)
    for page in out:
        page["host"] = (urlsplit(page["url"]).hostname or "").lower()
    return out


def parquet_pages(path: str) -> list[dict]:
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet").to_table(columns=["url", "host", "text"]).to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--documents", help="a documents Parquet folder instead of real pages")
    args = parser.parse_args()
    if not args.documents and not DATA.exists():
        sys.exit(f"{DATA} is absent: nothing to benchmark")
    config = DomainConfig(cv_folds=args.folds, seed=args.seed)
    rules = DomainRules(config.rules())
    docs = parquet_pages(args.documents) if args.documents else pages()
    for d in docs:
        d["label"] = rules.label(d["url"], d["host"])
    labelled = [d for d in docs if d["label"]]
    print(f"pages: {len(docs)} on {len({d['host'] for d in docs})} hosts; rule-labelled:")
    for label, n in sorted(Counter(d["label"] for d in labelled).items()):
        hosts = len({d["host"] for d in labelled if d["label"] == label})
        print(f"  {label:<13} {n:>4} pages on {hosts} hosts")
    classifier, report = train_domain_classifier(labelled, config)
    cv = report.get("cross_validation")
    if cv is None:  # fewer than two labels, or their hosts in one fold: nothing to measure
        sys.exit(f"no cross-validation: {report['classifier']}")
    print(f"host-grouped CV: {cv['folds']} folds, {cv['hosts']} hosts, {cv['documents']} pages")
    print("  model                              accuracy  balanced  macro-F1")
    print(f"  {'majority label of training folds':<34} {scores(cv['majority_baseline'])}")
    print(f"  {'shipped (host-equal weights)':<34} {scores(cv)}")
    for name, variant in VARIANTS.items():
        print(f"  {name:<34} {scores(cross_validate(labelled, args.folds, args.seed, variant))}")
    print("  confusion of the shipped model (true label: predicted counts):")
    for label, row in cv["confusion"].items():
        print(f"    {label:<13} {row}")

    labeller = DomainLabeller(rules, classifier, config.fallback, config.min_confidence)
    for d in docs:
        d["domain"] = labeller.label([d["url"]], [d["host"]], [d["text"]])[0]
    unruled = Counter(d["domain"] for d in docs if not d["label"])
    print(f"labels given to pages no rule knows: {dict(sorted(unruled.items()))}")

    tokens: Counter[str] = Counter()
    anneal: Counter[str] = Counter()
    rng = random.Random(args.seed)
    for d in docs:
        n = -(-len(d["text"]) // 4)  # mix.chars_per_token
        tokens[d["domain"]] += n
        if d["domain"] == "encyclopedic" and rng.random() < 0.1:
            anneal[d["domain"]] += n  # stand-in for the top-quality-score selection
    for name, targets in TARGET_SETS.items():
        mix = MixConfig(targets=targets, anneal=AnnealConfig(domains=["encyclopedic"]))
        plan = plan_mixture(dict(tokens), dict(anneal), mix)
        print(
            f"mixture '{name}' (max_epochs {mix.max_epochs}, "
            f"{plan['report']['tokens_per_pass']} tokens per pass):"
        )
        print("  domain          tokens  before  target   after  epochs  capped")
        for domain, row in plan["report"]["domains"].items():
            print(
                f"  {domain:<13} {row['tokens']:>8} {row['share_before']:>7.3f}"
                f" {row['target']:>7.3f} {row['share_after']:>7.3f}"
                f" {row['epochs']:>7.2f}  {row['capped']}"
            )
        print(f"  pretrain weights: {plan['mixtures']['pretrain']}")
        print(f"  anneal weights:   {plan['mixtures'].get('anneal')}")


def scores(row: dict) -> str:
    return f"{row['accuracy']:>8.3f}  {row['balanced_accuracy']:>8.3f}  {row['macro_f1']:>8.3f}"


class PageWeighted(DomainClassifier):
    """Every page weighs the same (the model before host-equal weights)."""

    def fit_features(self, features, labels, hosts):
        self.model.fit(features, labels)
        return self


class ClassBalanced(DomainClassifier):
    """Host-equal weights and classes reweighted to equal total weight."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.model.set_params(class_weight="balanced")


class CharNgrams(DomainClassifier):
    """Host-equal weights, word 1-2-grams plus hashed char 3-5-grams (robust to inflection
    and to the English/German mix)."""

    def features(self, texts):
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import HashingVectorizer

        chars = HashingVectorizer(
            n_features=2**18, analyzer="char_wb", ngram_range=(3, 5), alternate_sign=False
        )
        lines = [model_line(t, self.MAX_TOKENS) for t in texts]
        return hstack([super().features(texts), chars.transform(lines)]).tocsr()


VARIANTS = {
    "every page weighs the same": PageWeighted,
    "+ balanced class weights": ClassBalanced,
    "+ char 3-5-grams": CharNgrams,
}


if __name__ == "__main__":
    main()
