"""Mixture planning: target proportions, the epoch cap, the anneal bucket, determinism."""

import pytest

from curation.mix import (
    AnnealConfig,
    MixConfig,
    MixError,
    anneal_bucket,
    counted_plan,
    domain_weights,
    plan_mixture,
    unmet_targets,
)
from refinery.config import ConfigError

SIZES = {"encyclopedic": 2_000_000, "news": 30_000_000, "forum": 8_000_000, "other": 60_000_000}


def test_weights_hit_the_targets_when_no_cap_binds():
    targets = {"encyclopedic": 0.05, "news": 0.35, "forum": 0.1, "other": 0.5}
    weights, size = domain_weights(SIZES, targets, max_epochs=4.0)
    assert size == sum(SIZES.values())
    assert sum(weights.values()) == pytest.approx(1.0)
    for domain, target in targets.items():
        assert abs(weights[domain] - target) <= 0.01 * target


def test_epoch_cap_holds_and_the_excess_goes_to_the_others_by_target():
    targets = {"encyclopedic": 0.3, "news": 0.3, "forum": 0.1, "other": 0.3}
    weights, size = domain_weights(SIZES, targets, max_epochs=4.0)
    epochs = {d: weights[d] * size / SIZES[d] for d in SIZES}
    assert max(epochs.values()) <= 4.0 + 1e-9
    assert epochs["encyclopedic"] == pytest.approx(4.0)  # 0.3 would be 15 epochs
    free = 1.0 - weights["encyclopedic"]
    for domain in ("news", "forum", "other"):
        assert weights[domain] == pytest.approx(free * targets[domain] / 0.7)
    assert sum(weights.values()) == pytest.approx(1.0)


def test_cascading_caps_and_a_pass_larger_than_the_caps_allow():
    sizes = {"a": 10, "b": 100, "c": 10_000}
    weights, size = domain_weights(sizes, {"a": 0.4, "b": 0.4, "c": 0.2}, max_epochs=2.0)
    assert weights["a"] * size / 10 == pytest.approx(2.0)
    assert weights["b"] * size / 100 == pytest.approx(2.0)
    weights, size = domain_weights(sizes, {"a": 1, "b": 1, "c": 1}, 2.0, total_tokens=10**9)
    assert size == 2 * sum(sizes.values())  # shrunk: every domain at its cap
    assert all(weights[d] * size / sizes[d] == pytest.approx(2.0) for d in sizes)


def test_untargeted_domains_do_not_fill_the_pass_past_the_targeted_ones_caps():
    """Every targeted domain at its cap with untargeted tokens left: the pass shrinks, so the
    weights still sum to 1 (the manifest rescaled 0.04 to 1, 25 times past the cap)."""
    weights, size = domain_weights({"a": 100, "b": 10_000}, {"a": 1.0}, max_epochs=4.0)
    assert (weights, size) == ({"a": 1.0, "b": 0.0}, 400)
    sizes = {"a": 100, "b": 50, "c": 10_000}
    weights, size = domain_weights(sizes, {"a": 0.5, "b": 0.5}, max_epochs=4.0)
    assert sum(weights.values()) == pytest.approx(1.0) and weights["c"] == 0.0
    assert all(weights[d] * size / sizes[d] <= 4.0 + 1e-9 for d in ("a", "b"))


def test_natural_proportions_targets_for_absent_domains_and_errors():
    weights, _ = domain_weights(SIZES, None, 4.0)
    assert weights["other"] == pytest.approx(0.6)
    weights, _ = domain_weights({"a": 100, "b": 100}, {"a": 0.5, "science": 0.5}, 4.0)
    assert weights == {"a": pytest.approx(1.0), "b": 0.0}  # renormalised over present domains
    with pytest.raises(MixError, match="name none"):
        domain_weights({"a": 100}, {"b": 1.0}, 4.0)
    with pytest.raises(MixError, match="empty"):
        domain_weights({"a": 0}, None, 4.0)
    with pytest.raises(ConfigError):
        MixConfig(targets={"anneal": 1.0})
    with pytest.raises(ConfigError):
        MixConfig(max_epochs=0)


def test_plan_splits_each_domain_between_its_bucket_and_anneal():
    config = MixConfig(
        targets={"encyclopedic": 0.05, "news": 0.35, "forum": 0.1, "other": 0.5},
        anneal=AnnealConfig(domains=["encyclopedic"], share=0.5),
    )
    plan = plan_mixture(SIZES, {"encyclopedic": 500_000}, config)
    pretrain, anneal = plan["mixtures"]["pretrain"], plan["mixtures"]["anneal"]
    moved = anneal_bucket("encyclopedic")
    assert moved == "anneal.encyclopedic"
    assert sum(pretrain.values()) == pytest.approx(1.0)
    assert sum(anneal.values()) == pytest.approx(1.0)
    assert pretrain[moved] + pretrain["encyclopedic"] == pytest.approx(0.05)
    assert pretrain[moved] == pytest.approx(0.05 * 0.25)  # a quarter of its tokens moved
    assert anneal[moved] == pytest.approx(0.5 + 0.5 * pretrain[moved])
    assert anneal["news"] == pytest.approx(0.5 * pretrain["news"])
    report = plan["report"]["domains"]["encyclopedic"]
    assert report["share_before"] == pytest.approx(0.02)
    assert report["epochs"] == pytest.approx(0.05 / 0.02) and not report["capped"]
    assert plan == plan_mixture(SIZES, {"encyclopedic": 500_000}, config)  # deterministic
    assert plan["report"]["absent_targets"] == []
    config.targets["science"] = 0.2  # no science documents: the report names the target
    assert plan_mixture(SIZES, {}, config)["report"]["absent_targets"] == ["science"]
    report = plan_mixture({**SIZES, "science": 0}, {}, config)["report"]  # a 0-token domain
    assert report["domains"]["science"]["target"] == 0.0
    assert sum(d["target"] for d in report["domains"].values()) == pytest.approx(1.0)


def test_the_report_names_unsampled_and_capped_domains():
    config = MixConfig(targets={"a": 0.9, "b": 0.1}, max_epochs=2.0)
    report = plan_mixture({"a": 10, "b": 1_000, "c": 500}, {}, config)["report"]
    assert report["unsampled_domains"] == ["c"]  # documents, but no target
    assert report["domains"]["a"]["capped"] and report["domains"]["a"]["epochs"] == 2.0
    assert not report["domains"]["b"]["capped"] and report["domains"]["b"]["epochs"] < 2.0
    assert not report["domains"]["c"]["capped"] and report["domains"]["c"]["epochs"] == 0.0


def test_targets_a_cap_keeps_from_being_met_are_said():
    config = MixConfig(targets={"a": 0.9, "b": 0.1}, max_epochs=2.0)
    report = plan_mixture({"a": 10, "b": 1_000, "c": 500}, {}, config)["report"]
    line = unmet_targets(report)
    assert line.startswith("targets not met with at most mix.max_epochs=2 repeats of a domain")
    assert "a 0.900 -> 0.013 (capped), b 0.100 -> 0.987;" in line
    config = MixConfig(targets={"a": 0.5, "b": 0.5}, max_epochs=2.0)
    assert unmet_targets(plan_mixture({"a": 10, "b": 10}, {}, config)["report"]) is None
    natural = plan_mixture({"a": 10, "b": 30}, {}, MixConfig(max_epochs=1.0, total_tokens=10**6))
    assert unmet_targets(natural["report"]) is None
    # a small domain capped far short of its target, by less than 0.01 of the whole
    small = MixConfig(targets={"code": 0.009, "web": 0.991})
    line = unmet_targets(plan_mixture({"code": 1_000, "web": 999_000}, {}, small)["report"])
    assert "code 0.009 -> 0.004 (capped)" in line


def test_each_anneal_document_is_pretrained_on_at_its_domain_s_rate():
    """One `anneal` bucket read uniformly pretrained a domain targeted at 0 through its
    anneal documents (about 1% of a run's tokens in a trial) and a high-target domain's
    anneal documents below their rate."""
    sizes = {"news": 4_000_000, "science": 1_000_000, "books": 1_000_000}
    config = MixConfig(targets={"news": 0.7, "books": 0.3, "science": 0.0})
    plan = plan_mixture(sizes, {"science": 100_000, "books": 300_000}, config)
    pretrain, anneal = plan["mixtures"]["pretrain"], plan["mixtures"]["anneal"]
    assert "anneal.science" not in pretrain and "science" not in pretrain  # weight 0
    for domain, moved in (("books", 300_000), ("news", 0)):  # weight per token, either bucket
        rate = pretrain[domain] / (sizes[domain] - moved)
        if moved:
            assert pretrain[f"anneal.{domain}"] / moved == pytest.approx(rate)
    # annealing reads the annealing subset uniformly in its share, as one bucket did
    assert anneal["anneal.science"] == pytest.approx(0.5 * 100_000 / 400_000)
    assert anneal["anneal.books"] == pytest.approx(0.5 * 300_000 / 400_000 + 0.5 * 0.3 * 0.3)
    assert anneal["news"] == pytest.approx(0.5 * 0.7) and sum(anneal.values()) == pytest.approx(1)


def test_domains_trained_on_in_annealing_only_are_named():
    """Named from the plan: with mix.anneal.domains=[] (every domain, the demo's) a domain
    left out of the targets became the largest anneal bucket without a word."""
    sizes = {"news": 100, "science": 100, "books": 100}
    anneal = {"science": 10, "books": 10}
    config = MixConfig(targets={"news": 0.5, "science": 0.5, "books": 0.0})
    assert plan_mixture(sizes, anneal, config)["report"]["anneal_only_domains"] == ["books"]
    config.targets = {"news": 1.0}  # books and science left out: no weight either
    report = plan_mixture(sizes, anneal, config)["report"]
    assert report["anneal_only_domains"] == ["books", "science"]
    assert plan_mixture(sizes, anneal, MixConfig())["report"]["anneal_only_domains"] == []


def test_no_anneal_documents_no_anneal_mixture():
    plan = plan_mixture({"a": 10, "b": 30}, {}, MixConfig())
    assert plan["mixtures"] == {"pretrain": {"a": 0.25, "b": 0.75}}
    assert plan["report"]["domains"]["b"]["epochs"] == pytest.approx(1.0)


def test_a_corpus_smaller_than_a_token_per_pass_still_gets_weights_summing_to_one():
    weights, size = domain_weights({"a": 1}, None, 0.5)  # int(0.5) was a pass of 0 tokens
    assert weights == {"a": 1.0} and size == 0.5


def test_the_tokenize_stage_plans_again_on_counted_tokens():
    """The mix stage plans on characters / 4, whose error differs by domain: copied weights
    drew books' documents at 0.93 and other's at 1.01 of the uniform rate in a trial."""
    from refinery.config import to_dict

    natural = to_dict(MixConfig())
    counted = {"books": 300, "news": 500, "anneal.books": 100, "anneal.news": 100}
    plan = counted_plan(natural, counted)
    pretrain = plan["mixtures"]["pretrain"]
    assert pretrain == pytest.approx({bucket: t / 1000 for bucket, t in counted.items()})
    assert plan["mixtures"]["anneal"]["anneal.books"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.1)
    targeted = to_dict(MixConfig(targets={"books": 0.5, "news": 0.5, "code": 0.1}))
    plan = counted_plan(targeted, counted)
    pretrain = plan["mixtures"]["pretrain"]
    assert pretrain["books"] + pretrain["anneal.books"] == pytest.approx(0.5)
    assert pretrain["anneal.books"] / 100 == pytest.approx(pretrain["books"] / 300)
    assert plan["report"]["absent_targets"] == ["code"]
    # a weight that rounds to 0 is left out: a manifest refuses a weight of 0
    tiny = counted_plan(natural, {"web": 3_000_000_000, "science": 900, "anneal.science": 1})
    assert "anneal.science" not in tiny["mixtures"]["pretrain"]
