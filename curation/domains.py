"""Domain labels: URL/host rules give weak labels, a text classifier generalises them.

Rules (`classify.domains.rules`, label -> regexes searched in `host/path`, first label in
config order wins) label only the pages of hosts someone wrote a rule for. A scikit-learn
classifier (hashed word uni/bigrams of the normalised text + a logistic-loss linear model)
is trained on those weakly labelled pages, from their text alone, so it labels pages of hosts
no rule knows. Its quality is measured where it matters: on pages of hosts held out of its
training. A document keeps its rule label when it has one; otherwise it gets the classifier's
label when the classifier is at least `min_confidence` sure, else the fallback label.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from curation.quality import model_line
from refinery.config import ConfigError, read_yaml, resolve_path

BUCKET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # labels become mix buckets and folders


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
    # Share of labelled hosts held out to measure the classifier on hosts it never saw.
    holdout_hosts: float = 0.2
    # Below this probability an unruled document gets `fallback` rather than a guess.
    min_confidence: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [n for n in self.labels if not BUCKET_NAME.match(n) or n == "anneal"]
        if bad:
            raise ConfigError(
                f"classify.domains.labels {bad}: labels name mix buckets (letters, digits, "
                "_ . -; not `anneal`)"
            )
        unknown = [n for n in [*self.rules(), self.fallback] if n not in self.labels]
        if unknown:
            raise ConfigError(f"classify.domains: {unknown} not in classify.domains.labels")
        if not 0.0 <= self.holdout_hosts < 1.0:
            raise ConfigError(
                f"classify.domains.holdout_hosts must be in [0, 1), got {self.holdout_hosts}"
            )

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
    """The weak labeller: first label whose regex matches `host/path`."""

    def __init__(self, rules: dict[str, list[str]]):
        self.rules = [(label, re.compile(p)) for label, ps in rules.items() for p in ps]

    def label(self, url: str | None, host: str | None = None) -> str | None:
        parts = urlsplit(url or "")
        where = f"{(host or parts.hostname or '').lower()}{parts.path.lower() or '/'}"
        return next((label for label, rule in self.rules if rule.search(where)), None)


def host_is_heldout(host: str, share: float, seed: int) -> bool:
    digest = hashlib.sha1(f"{seed}:{host}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < share


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

    @staticmethod
    def prepare(text: str) -> str:
        return model_line(text, DomainClassifier.MAX_TOKENS)

    def fit(self, texts: list[str], labels: list[str]) -> DomainClassifier:
        self.model.fit(self.vectorizer.transform([self.prepare(t) for t in texts]), labels)
        return self

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(label, probability) per text."""
        if not texts:
            return []
        probs = self.model.predict_proba(
            self.vectorizer.transform([self.prepare(t) for t in texts])
        )
        best = probs.argmax(axis=1)
        return [
            (str(self.model.classes_[i]), float(p[i])) for i, p in zip(best, probs, strict=True)
        ]


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


def train_domain_classifier(
    samples: list[dict[str, Any]], config: DomainConfig
) -> tuple[DomainClassifier | None, dict[str, Any]]:
    """Fit on weakly labelled samples ({host, text, label}); report accuracy on held-out hosts.

    Returns (classifier fitted on every sample, report); the classifier is None when fewer than
    two labels have samples (nothing to tell apart), with the reason in the report.
    """
    counts: dict[str, int] = {}
    for s in samples:
        counts[s["label"]] = counts.get(s["label"], 0) + 1
    report: dict[str, Any] = {"labelled": dict(sorted(counts.items()))}
    if len(counts) < 2:
        report["classifier"] = "not trained: fewer than two labels among rule-labelled pages"
        return None, report
    heldout = [host_is_heldout(s["host"], config.holdout_hosts, config.seed) for s in samples]
    train = [s for s, h in zip(samples, heldout, strict=True) if not h]
    test = [s for s, h in zip(samples, heldout, strict=True) if h]
    if test and len({s["label"] for s in train}) >= 2:
        probe = DomainClassifier(config.seed).fit(
            [s["text"] for s in train], [s["label"] for s in train]
        )
        predicted = [label for label, _ in probe.predict([s["text"] for s in test])]
        correct = sum(p == s["label"] for p, s in zip(predicted, test, strict=True))
        report["heldout_hosts"] = len({s["host"] for s in test})
        report["heldout_documents"] = len(test)
        report["heldout_accuracy"] = correct / len(test)
    else:
        report["heldout_accuracy"] = None
    classifier = DomainClassifier(config.seed).fit(
        [s["text"] for s in samples], [s["label"] for s in samples]
    )
    report["classifier"] = "trained"
    return classifier, report
