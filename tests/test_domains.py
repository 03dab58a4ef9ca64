"""Domain labels: URL rules (weak labels), the text classifier measured on hosts it never saw
(host-grouped cross-validation), the labeller."""

import random

import pytest

from curation.config import load_curation_config
from curation.domains import (
    DomainClassifier,
    DomainConfig,
    DomainLabeller,
    DomainRules,
    cross_validate,
    host_fold,
    label_scores,
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
        # the site outweighs what its path looks like; words match at their boundaries
        ("https://github.com/pytorch/pytorch/wiki/Home", "code"),
        ("https://www.reddit.com/r/news/comments/1", "forum"),
        ("https://sometimeshop.com/products/shoe", "commerce"),
        ("https://dailymotion.com/video/x7", None),
        ("https://example.com/thread-safety-in-python", None),
        ("https://www.pcgamer.com/through-the-darkest-of-times-review/", None),
        ("https://www.nytimes.com/2020/01/01/x.html", "news"),
        # ports, the root's trailing dot, and a URL Python cannot split
        ("https://www.bbc.co.uk:8080/sport", "news"),
        ("https://www.bbc.co.uk./sport", "news"),
        ("http://[bad/x", None),
        # site rules match the host, not a path or a host that only begins with the name
        ("https://www.amazon.co.uk/dp/1", "commerce"),
        ("https://www.amazon.com.au/dp/1", "commerce"),
        ("https://amazon.com.example.org/dp/1", None),
        ("https://example.com/files/report.edu/x", None),
        ("https://example.com/mirror.news/x", None),
        # a site named in the path is not the site (a Wayback capture, a links page)
        ("http://web.archive.org/web/2008/http://www.nytimes.com/2008/x.html", None),
        ("http://example.org/links/www.github.com/", None),
        ("https://en.m.wikipedia.org/wiki/X", "encyclopedic"),
        ("https://smile.amazon.com/dp/1", "commerce"),
        ("https://www.ox.ac.uk/research", "science"),
        ("https://www.forum.example/t/1", "forum"),
        ("https://www.docs.example/a", "code"),
    ],
)
def test_weak_label_rules(rules, url, label):
    assert rules.label(url) == label


def test_a_host_match_wins_then_the_first_label_in_config_order():
    rules = DomainRules({"a": ["/wiki/"], "b": [r"example\.org/"], "c": ["/w"]})
    assert rules.label("https://example.org/wiki/x") == "b"  # the site, over a path
    assert rules.label("https://other.org/wiki/x") == "a"  # two path matches: config order
    assert rules.label("https://example.org/x", host="other.test") is None  # host column wins
    assert rules.label("http://[bad/x", host="www.example.org:8080") == "b"


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
    with pytest.raises(ConfigError, match="'anneal.news'"):  # the news domain's anneal bucket
        DomainConfig(labels=["news", "anneal.news", "other"])
    # the tokenize stage's folder rule, checked before any stage runs, not after mix
    with pytest.raises(ConfigError, match=r"labels '\.\.', 'validation': labels name mix"):
        DomainConfig(labels=["validation", "..", "other"])
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
    config = DomainConfig(cv_folds=4, seed=1)
    data = samples()
    classifier, report = train_domain_classifier(data, config)
    assert report["labelled_hosts"] == {"code": 20, "commerce": 20, "science": 20}
    cv = report["cross_validation"]
    assert cv["folds"] == 4 and cv["hosts"] == 60 and cv["documents"] == 300
    assert sum(n for row in cv["confusion"].values() for n in row.values()) == 300
    assert cv["accuracy"] > 0.9 and cv["macro_f1"] > 0.9
    assert cv["majority_baseline"]["accuracy"] < 0.5  # three labels on 20 hosts each
    rng = random.Random(42)
    guesses = classifier.predict([page(rng, "science"), page(rng, "commerce")])
    assert [label for label, _ in guesses] == ["science", "commerce"]
    again, report_again = train_domain_classifier(data, config)
    assert again.predict([data[0]["text"]]) == classifier.predict([data[0]["text"]])
    assert report_again == report


class Spy(DomainClassifier):
    """Records the hosts each cross-validation model is trained on."""

    trained_on: list[set[str]] = []

    def fit_features(self, features, labels, hosts):
        Spy.trained_on.append(set(hosts))
        return super().fit_features(features, labels, hosts)


def test_cross_validation_predicts_each_host_with_a_model_that_never_saw_it():
    data = samples(n_hosts=12)
    Spy.trained_on.clear()
    cv = cross_validate(data, folds=3, seed=5, make=Spy)
    folds = {h: host_fold(h, 3, 5) for h in {s["host"] for s in data}}
    assert len(Spy.trained_on) == len(set(folds.values()))
    for trained in Spy.trained_on:
        held_out = set(folds) - trained
        assert held_out and len({folds[h] for h in held_out}) == 1
    assert cv["documents"] == len(data)


def test_hosts_weigh_the_same_in_training():
    """Fifty science pages of one host do not outvote ten commerce hosts of one page each: on a
    page that is half science, half commerce, the hosts' prior shows, not the pages'."""
    rng = random.Random(0)
    texts = [page(rng, "science") for _ in range(50)] + [page(rng, "commerce") for _ in range(10)]
    labels = ["science"] * 50 + ["commerce"] * 10
    # Common words with as many science as commerce words.
    half = [
        " ".join(rng.sample(COMMON.split() * 3, 50) + rng.sample(VOCAB["science"].split(), 5))
        + " "
        + " ".join(rng.sample(VOCAB["commerce"].split(), 5))
        for _ in range(20)
    ]

    def p_commerce(hosts: list[str]) -> float:
        model = DomainClassifier(0).fit(texts, labels, hosts)
        probs = model.model.predict_proba(model.features(half))
        return float(probs[:, list(model.model.classes_).index("commerce")].mean())

    one_host = ["big.test"] * 50 + [f"shop{i}.test" for i in range(10)]
    own_hosts = [f"site{i}.test" for i in range(60)]
    assert p_commerce(one_host) > p_commerce(own_hosts) + 0.2


def test_label_scores_on_known_predictions():
    scores = label_scores(["a", "a", "a", "b"], ["a", "a", "b", "b"])
    assert scores["accuracy"] == 0.75
    assert scores["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-4)
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2, abs=1e-4)
    assert scores["confusion"] == {"a": {"a": 2, "b": 1}, "b": {"b": 1}}


def test_one_label_is_not_enough_to_train():
    data = [{"host": "a.test", "text": "words here", "label": "news"}] * 3
    classifier, report = train_domain_classifier(data, DomainConfig())
    assert classifier is None and "not trained" in report["classifier"]


@pytest.mark.parametrize(("score", "used"), [(0.5, False), (0.45, False), (0.55, True)])
def test_a_classifier_must_beat_the_majority_label_on_unseen_hosts(monkeypatch, score, used):
    import curation.domains

    measured = {"balanced_accuracy": score, "majority_baseline": {"balanced_accuracy": 0.5}}
    monkeypatch.setattr(curation.domains, "cross_validate", lambda *args: measured)
    classifier, report = train_domain_classifier(samples(n_hosts=10), DomainConfig())
    assert (classifier is not None) is used
    assert report["classifier"] == "trained" if used else "does not beat" in report["classifier"]


def test_a_classifier_that_cannot_be_measured_is_not_used():
    # every labelled page on one host: no unseen host to measure it on
    one_host = [{**row, "host": "one.test"} for row in samples(n_hosts=10)]
    classifier, report = train_domain_classifier(one_host, DomainConfig())
    assert classifier is None and "cannot be measured" in report["classifier"]


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


def test_a_sample_without_a_host_is_a_host_of_its_own():
    samples = [
        {
            "host": None if i == 0 else f"h{i % 7}.example",
            "label": ["news", "science"][i % 2],
            "text": f"text {i} " + "word " * 20,
        }
        for i in range(40)
    ]
    classifier, report = train_domain_classifier(samples, DomainConfig())
    assert report["cross_validation"]["hosts"] == 8  # seven named hosts and ""
