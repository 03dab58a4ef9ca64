"""Ablation decisions: summaries, the seed-spread verdict and the budget check."""

from __future__ import annotations

import pytest

from refinery.config import ConfigError
from training.ablation import AblationConfig, AblationError, check_budget, summarise


def rows(*bpb: float) -> list[dict]:
    return [{"run": f"r{i}", "bpb": v} for i, v in enumerate(bpb)]


def test_a_gap_beyond_the_seed_spread_is_reported_as_one():
    summary = summarise({"raw": rows(1.50, 1.52, 1.51), "filtered": rows(1.40, 1.41, 1.39)})
    assert summary["ranking"] == ["filtered", "raw"]
    assert summary["arms"]["raw"]["bpb_mean"] == pytest.approx(1.51)
    assert summary["arms"]["raw"]["bpb_std"] == pytest.approx(0.01)
    (comparison,) = summary["comparisons"]
    assert comparison["gap"] == pytest.approx(0.11)
    assert comparison["beyond_spread"]


def test_overlapping_seeds_are_within_the_spread():
    summary = summarise({"a": rows(1.40, 1.48, 1.44), "b": rows(1.45, 1.50, 1.43)})
    (comparison,) = summary["comparisons"]
    assert comparison["lower_bpb"] == "a"
    assert not comparison["beyond_spread"]


def test_mc_accuracy_is_averaged_over_seeds():
    scores = {
        "a": [{"bpb": 1.0, "mc": {"piqa": 0.5}}, {"bpb": 1.1, "mc": {"piqa": 0.7}}],
        "b": [{"bpb": 1.2, "mc": {"piqa": 0.4}}, {"bpb": 1.3, "mc": {"piqa": 0.4}}],
    }
    arms = summarise(scores)["arms"]
    assert arms["a"]["mc"]["piqa"]["acc_mean"] == pytest.approx(0.6)
    assert arms["b"]["mc"]["piqa"]["acc_std"] == 0.0


def test_config_needs_two_arms_a_reference_and_seeds():
    with pytest.raises(ConfigError, match="at least two"):
        AblationConfig(out="o", reference="r", arms={"a": "x"})
    with pytest.raises(ConfigError, match="reference"):
        AblationConfig(out="o", arms={"a": "x", "b": "y"})
    with pytest.raises(ConfigError, match="seed"):
        AblationConfig(out="o", reference="r", arms={"a": "x", "b": "y"}, seeds=[])


def test_a_budget_beyond_the_epoch_cap_is_refused(tokens):
    from refinery.manifest import read_manifest

    manifest = read_manifest(tokens)
    supply = sum(b.tokens for b in manifest.buckets.values()) * manifest.max_epochs
    check_budget("ok", manifest, int(supply))
    with pytest.raises(AblationError, match="arm small: .* exceed"):
        check_budget("small", manifest, int(supply) + 1)
