"""Domain labels: URL rules (weak labels), the text classifier on held-out hosts, the labeller."""

import random

import pytest

from curation.config import load_curation_config
from curation.domains import (
    DomainConfig,
    DomainLabeller,
    DomainRules,
    host_is_heldout,
    train_domain_classifier,
)
from refinery.config import ConfigError


@pytest.fixture(scope="module")
def rules():
    return DomainRules(DomainConfig().rules())


@pytest.mark.parametrize(
    "url, label",
    [
        ("https://en.wikipedia.org/wiki/Lobster", "encyclopedic"),
        ("https://math.stackexchange.com/questions/1", "forum"),
        ("https://github.com/apache/spark", "code"),
        ("https://docs.example.com/guide", "code"),
        ("https://arxiv.org/abs/2305.16264", "science"),
        ("https://www.cs.stanford.edu/people", "science"),
        ("https://www.bbc.co.uk/sport", "news"),
        ("https://sports-news-daily.example/story", "news"),
        ("https://www.gutenberg.org/ebooks/1342", "books"),
        ("https://shop.example.com/", "commerce"),
        ("https://example.com/products/kettle", "commerce"),
        ("https://quiet-harvest.example/2021/05/my-garden/", None),
    ],
)
def test_weak_label_rules(rules, url, label):
    assert rules.label(url) == label


def test_first_label_in_config_order_wins():
    rules = DomainRules({"a": ["/wiki/"], "b": [r"example\.org/"]})
    assert rules.label("https://example.org/wiki/x") == "a"
    assert rules.label("https://example.org/x") == "b"
    assert rules.label("https://example.org/x", host="other.test") is None  # host column wins


def test_rules_file_and_labels_are_validated(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("news: ['(unclosed']\n")
    with pytest.raises(ConfigError, match="bad regex"):
        DomainConfig(rules_file=str(bad))
    bad.write_text("gossip: ['x']\n")
    with pytest.raises(ConfigError, match="not in classify.domains.labels"):
        DomainConfig(rules_file=str(bad))
    with pytest.raises(ConfigError, match="anneal"):
        DomainConfig(labels=["anneal", "other"])
    with pytest.raises(ConfigError, match="mix.targets"):
        load_curation_config(overrides=["mix.targets={gossip: 1.0}"])


VOCAB = {
    "code": "function return variable compile install library import class method error "
    "python java array string loop module package debug build test api",
    "science": "experiment hypothesis protein cell species measurement sample theory data "
    "analysis results particle energy galaxy molecule gene study observed significant",
    "commerce": "price cart shipping order buy discount sale checkout product delivery stock "
    "offer customer review size colour free returns warranty deal",
}
COMMON = "the a of and to in is it that for on with as this was are be by"


def page(rng: random.Random, label: str) -> str:
    topical, common = VOCAB[label].split(), COMMON.split()
    return " ".join(rng.choice(topical if rng.random() < 0.3 else common) for _ in range(120))


def samples(n_hosts: int = 60, per_host: int = 5, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for h in range(n_hosts):
        label = list(VOCAB)[h % len(VOCAB)]
        out += [
            {"host": f"site{h}.test", "text": page(rng, label), "label": label}
            for _ in range(per_host)
        ]
    return out


def test_classifier_is_measured_on_hosts_it_never_saw():
    config = DomainConfig(holdout_hosts=0.3, seed=1)
    data = samples()
    classifier, report = train_domain_classifier(data, config)
    heldout_hosts = {s["host"] for s in data if host_is_heldout(s["host"], 0.3, 1)}
    assert report["heldout_hosts"] == len(heldout_hosts) > 0
    assert report["heldout_documents"] == 5 * len(heldout_hosts)
    assert report["heldout_accuracy"] > 0.9
    rng = random.Random(42)
    guesses = classifier.predict([page(rng, "science"), page(rng, "commerce")])
    assert [label for label, _ in guesses] == ["science", "commerce"]
    again, _ = train_domain_classifier(data, config)
    assert again.predict([data[0]["text"]]) == classifier.predict([data[0]["text"]])


def test_one_label_is_not_enough_to_train():
    data = [{"host": "a.test", "text": "words here", "label": "news"}] * 3
    classifier, report = train_domain_classifier(data, DomainConfig())
    assert classifier is None and "not trained" in report["classifier"]


def test_labeller_rule_first_then_confident_guess_then_fallback(rules):
    classifier, _ = train_domain_classifier(samples(), DomainConfig())
    labeller = DomainLabeller(rules, classifier, "other", min_confidence=0.6)
    rng = random.Random(3)
    urls = ["https://github.com/x", "https://unknown.test/a", "https://unknown.test/b"]
    texts = [page(rng, "science"), page(rng, "science"), "zzz qqq"]
    assert labeller.label(urls, ["github.com", "unknown.test", "unknown.test"], texts) == [
        "code",
        "science",
        "other",
    ]
    bare = DomainLabeller(rules, None, "other", 0.6)
    assert bare.label(urls[:2], [None, None], texts[:2]) == ["code", "other"]
