"""Domain labels: URL/host rules give weak labels, a text classifier generalises them.

Rules (`classify.domains.rules`, label -> regexes searched in `host/path`, first label in
config order wins) label only the pages of hosts someone wrote a rule for. A scikit-learn
classifier (hashed word uni/bigrams of the normalised text + a logistic-loss linear model)
is trained on those weakly labelled pages, from their text alone, so it labels pages of hosts
no rule knows. Its quality is measured where it matters, on hosts it never saw: host-grouped
cross-validation predicts every labelled host's pages with a model trained on the other folds'
hosts, next to the majority-label baseline. A document keeps its rule label when it has one;
otherwise it gets the classifier's label when the classifier is at least `min_confidence`
sure, else the fallback label. A classifier that does not beat the majority baseline on unseen
hosts (or cannot be measured) is not used: unruled pages get the fallback label.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from curation.mix import ANNEAL
from curation.quality import model_line
from refinery.config import ConfigError, check_ranges, check_seed, read_yaml, resolve_path
from refinery.manifest import RESERVED_NAMES, unusable_bucket_names


@dataclass
class DomainConfig:
    # Labels a document may get; rule labels must be among them, and `fallback` too.
    labels: list[str] = field(
        default_factory=lambda: [
            "encyclopedic",
            "news",
            "forum",
            "code",
            "science",
            "books",
            "commerce",
            "other",
        ]
    )
    fallback: str = "other"
    # YAML file of label -> regexes on "host/path" (conf/domain_rules.yaml shows the form).
    rules_file: str = "conf/domain_rules.yaml"
    # Weakly labelled documents per label brought to the driver to train the classifier.
    sample_per_label: int = 5000
    # Host-grouped cross-validation folds measuring the classifier on hosts it never saw.
    cv_folds: int = 5
    # Below this probability an unruled document gets `fallback` rather than a guess.
    min_confidence: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        anneal = [n for n in self.labels if n == ANNEAL or n.startswith(f"{ANNEAL}.")]
        bad = unusable_bucket_names(n for n in self.labels if n not in anneal)
        bad += [repr(n) for n in anneal]
        if bad:
            raise ConfigError(
                f"classify.domains.labels {', '.join(bad)}: labels name mix buckets and their "
                f"folders (letters, digits, _ . -, starting with a letter or digit; not "
                f"{', '.join((ANNEAL, f'{ANNEAL}.*', *RESERVED_NAMES))})"
            )
        unknown = [n for n in [*self.rules(), self.fallback] if n not in self.labels]
        if unknown:
            raise ConfigError(f"classify.domains: {unknown} not in classify.domains.labels")
        if self.cv_folds < 2:
            raise ConfigError(f"classify.domains.cv_folds must be at least 2, got {self.cv_folds}")
        check_ranges(
            "classify.domains", self, {"min_confidence": "in [0, 1]", "sample_per_label": "> 0"}
        )
        check_seed("classify.domains.seed", self.seed)

    def rules(self) -> dict[str, list[str]]:
        """The rules file, checked: a mapping of label -> list of valid regexes."""
        path = resolve_path(self.rules_file)
        if not path.is_file():
            raise ConfigError(f"classify.domains.rules_file: no file at {path}")
        rules = read_yaml(path) or {}
        for label, patterns in rules.items():
            if not isinstance(patterns, list):
                raise ConfigError(f"{path}: {label} must map to a list of regexes")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as err:
                    raise ConfigError(f"{path}: {label}: bad regex {pattern!r}: {err}") from None
        return rules


class DomainRules:
    """The weak labeller: the first label whose regex matches `host/` alone, else the first
    whose regex matches `host/path`: what a site is (github.com) outweighs what a path looks
    like (/wiki/), whatever the order of the labels."""

    def __init__(self, rules: dict[str, list[str]]):
        self.rules = [(label, re.compile(p)) for label, ps in rules.items() for p in ps]

    def label(self, url: str | None, host: str | None = None) -> str | None:
        try:
            parts = urlsplit(url or "")
            url_host, path = parts.hostname, parts.path
        except ValueError:  # e.g. "http://[bad/x": label by the host column alone
            url_host, path = None, ""
        site = bare_host(host or url_host or "")
        for where in (f"{site}/", f"{site}{path.lower() or '/'}"):
            found = next((label for label, rule in self.rules if rule.search(where)), None)
            if found:
                return found
        return None


def bare_host(host: str) -> str:
    """A host as rules match it: lower case, without a port or the root's trailing dot."""
    host = host.strip().lower()
    if not host.startswith("["):  # an IPv6 literal keeps its colons
        host = re.sub(r":\d*$", "", host)
    return host.rstrip(".")


def host_fold(host: str, folds: int, seed: int) -> int:
    """The cross-validation fold of a host: a seeded hash, the same on every run."""
    digest = hashlib.sha1(f"{seed}:{host}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % folds


class DomainClassifier:
    """Text -> domain label, trained on weak labels; never sees the URL."""

    MAX_TOKENS = 512  # a page's opening says what it is; bounds the cost per document

    def __init__(self, seed: int = 0):
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import SGDClassifier

        # Text is already normalised (`model_line`): split on spaces, no lower-casing again.
        self.vectorizer = HashingVectorizer(
            n_features=2**18,
            ngram_range=(1, 2),
            alternate_sign=False,
            tokenizer=str.split,
            token_pattern=None,
            lowercase=False,
        )
        self.model = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=100, random_state=seed)

    def features(self, texts: list[str]) -> Any:
        """Sparse feature rows; stateless, so cross-validation computes them once."""
        return self.vectorizer.transform([model_line(t, self.MAX_TOKENS) for t in texts])

    def fit(self, texts: list[str], labels: list[str], hosts: list[str]) -> DomainClassifier:
        return self.fit_features(self.features(texts), labels, hosts)

    def fit_features(self, features: Any, labels: list[str], hosts: list[str]) -> DomainClassifier:
        """Each host weighs the same in the loss, however many pages it has: otherwise a label
        learns one big host's style (Wikipedia's), not the genre. Chosen by host-grouped CV on
        real pages (docs/BENCHMARKS.md, "Domain classifier and mixture")."""
        pages = Counter(hosts)
        weights = np.array([1.0 / pages[h] for h in hosts])
        self.model.fit(features, labels, sample_weight=weights * len(weights) / weights.sum())
        return self

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(label, probability) per text."""
        return self.predict_features(self.features(texts)) if texts else []

    def predict_features(self, features: Any) -> list[tuple[str, float]]:
        probs = self.model.predict_proba(features)
        best = probs.argmax(axis=1)
        return [
            (str(self.model.classes_[i]), float(p[i])) for i, p in zip(best, probs, strict=True)
        ]


def label_scores(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall per true label), macro-F1 and the confusion
    counts {true: {predicted: n}}: accuracy alone flatters a model that says the majority label."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    confusion: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, predicted, strict=True):
        row = confusion.setdefault(t, {})
        row[p] = row.get(p, 0) + 1
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4),
        "confusion": {t: dict(sorted(row.items())) for t, row in sorted(confusion.items())},
    }


def in_canonical_order(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples sorted by content: SGD depends on the order of its rows, and the order in
    which Spark collects them is not fixed, so the same sample gives the same model."""
    return sorted(samples, key=lambda s: (s["host"], s["label"], s["text"]))


def cross_validate(
    samples: list[dict[str, Any]],
    folds: int,
    seed: int,
    make: Callable[[int], DomainClassifier] = DomainClassifier,
) -> dict[str, Any] | None:
    """Host-grouped k-fold cross-validation: each host's pages are predicted once, by a model
    (`make(seed)`) trained on the other folds' hosts; the baseline predicts the training folds'
    most common label. None when the hosts fall in fewer than two folds."""
    samples = in_canonical_order(samples)
    fold_of = [host_fold(s["host"], folds, seed) for s in samples]
    if len(set(fold_of)) < 2:
        return None
    labels = [s["label"] for s in samples]
    features = make(seed).features([s["text"] for s in samples])
    predicted, baseline = [""] * len(samples), [""] * len(samples)
    for fold in sorted(set(fold_of)):
        train = [i for i, f in enumerate(fold_of) if f != fold]
        test = [i for i, f in enumerate(fold_of) if f == fold]
        train_labels = [labels[i] for i in train]
        majority = max(sorted(set(train_labels)), key=train_labels.count)
        if len(set(train_labels)) < 2:  # one label to learn: a model could only say that
            guesses = [majority] * len(test)
        else:
            train_hosts = [samples[i]["host"] for i in train]
            model = make(seed).fit_features(features[train], train_labels, train_hosts)
            guesses = [label for label, _ in model.predict_features(features[test])]
        for i, guess in zip(test, guesses, strict=True):
            predicted[i], baseline[i] = guess, majority
    return {
        "folds": folds,
        "hosts": len({s["host"] for s in samples}),
        "documents": len(samples),
        **label_scores(labels, predicted),
        "majority_baseline": {
            k: v for k, v in label_scores(labels, baseline).items() if k != "confusion"
        },
    }


def train_domain_classifier(
    samples: list[dict[str, Any]], config: DomainConfig
) -> tuple[DomainClassifier | None, dict[str, Any]]:
    """Fit on weakly labelled samples ({host, text, label}); report host-grouped CV scores.

    Returns (classifier fitted on every sample, report); the classifier is None, with the
    reason in the report, when fewer than two labels have samples (nothing to tell apart) or
    when cross-validation does not show it beating the majority label on unseen hosts.
    A sample without a host (a URL without one) is a host of its own: "".
    """
    samples = [{**s, "host": s["host"] or ""} for s in samples]
    pages = Counter(s["label"] for s in samples)
    hosts = Counter(label for label, _ in {(s["label"], s["host"]) for s in samples})
    report: dict[str, Any] = {
        "labelled": dict(sorted(pages.items())),
        "labelled_hosts": dict(sorted(hosts.items())),
    }
    if len(pages) < 2:
        report["classifier"] = "not trained: fewer than two labels among rule-labelled pages"
        return None, report
    samples = in_canonical_order(samples)
    cv = cross_validate(samples, config.cv_folds, config.seed)
    report["cross_validation"] = cv
    if cv is None:
        report["classifier"] = (
            "not used: the labelled hosts fall in one fold, so it cannot be measured"
        )
        return None, report
    score, baseline = cv["balanced_accuracy"], cv["majority_baseline"]["balanced_accuracy"]
    if score <= baseline:
        report["classifier"] = (
            f"not used: on unseen hosts its balanced accuracy {score} does not beat the "
            f"majority label's {baseline}"
        )
        return None, report
    classifier = DomainClassifier(config.seed).fit(
        [s["text"] for s in samples], [s["label"] for s in samples], [s["host"] for s in samples]
    )
    report["classifier"] = "trained"
    return classifier, report


@dataclass
class DomainLabeller:
    """What the classify stage ships to executors: rules plus the (optional) classifier."""

    rules: DomainRules
    classifier: DomainClassifier | None
    fallback: str
    min_confidence: float

    def label(self, urls: list[str], hosts: list[str], texts: list[str]) -> list[str]:
        labels = [self.rules.label(u, h) for u, h in zip(urls, hosts, strict=True)]
        unruled = [i for i, label in enumerate(labels) if label is None]
        if self.classifier is not None and unruled:
            guesses = self.classifier.predict([texts[i] or "" for i in unruled])
            for i, (guess, p) in zip(unruled, guesses, strict=True):
                labels[i] = guess if p >= self.min_confidence else None
        return [label or self.fallback for label in labels]
