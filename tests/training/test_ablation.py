"""Ablation decisions: summaries, the seed-spread verdict and the budget check."""

from __future__ import annotations

import pytest

from refinery.config import ConfigError
from training.ablation import (
    AblationConfig,
    AblationError,
    check_budget,
    summarise,
    train_arms,
    window_supply,
)
from training.checkpoint import CheckpointError, OtherSettings
from training.train import StopRequest


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


def test_a_run_that_scored_nan_is_refused_not_ranked():
    with pytest.raises(AblationError, match=r"arm diverged: .* not finite \[nan, 1.3, 1.3\]"):
        summarise({"a": rows(1.40, 1.42, 1.41), "diverged": rows(float("nan"), 1.3, 1.3)})


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
    with pytest.raises(ConfigError, match="seeds must differ"):
        AblationConfig(out="o", reference="r", arms={"a": "x", "b": "y"}, seeds=[0, 0])
    two = {"out": "o", "reference": "r", "arms": {"a": "x", "b": "y"}}
    with pytest.raises(ConfigError, match=r"seeds must be in 0 .. 2\^64 - 1, got -1"):
        AblationConfig(**two, seeds=[0, -1])
    with pytest.raises(
        ConfigError, match=r"seeds must be in 0 .. 2\^64 - 1, got 18446744073709551616"
    ):
        AblationConfig(**two, seeds=[0, 2**64])  # refused before any arm is tokenized
    with pytest.raises(ConfigError, match="eval_batch must be > 0, got 0"):
        AblationConfig(**two, eval_batch=0)
    with pytest.raises(ConfigError, match="max_epochs must be > 0, got -1"):
        AblationConfig(**two, max_epochs=-1)


def test_one_seed_claims_no_spread():
    summary = summarise({"a": rows(1.40), "b": rows(1.50)})
    assert summary["comparisons"][0]["beyond_spread"] is None


def ablation(tmp_path, *extra: str) -> AblationConfig:
    from refinery.config import load_config

    arms = ["arms.a=x", "arms.b=y", "seeds=[0]", "train=[train.progress=false]"]
    return load_config(AblationConfig, None, [f"out={tmp_path}", "reference=r", *arms, *extra])


def test_a_budget_of_part_steps_is_refused_before_anything_runs(tmp_path):
    from training.ablation import check_inputs

    with pytest.raises(ConfigError, match="tokens=1000 must be a multiple of .* \\(2048\\)"):
        check_inputs(ablation(tmp_path, "tokens=1000"))


def test_a_stopped_run_is_not_scored_and_another_budget_is_not_resumed(
    tokens, tmp_path, monkeypatch
):
    cfg = ablation(tmp_path, "tokens=4096")
    with monkeypatch.context() as patch:  # SIGTERM or Ctrl-C during the first step
        patch.setattr(StopRequest, "agreed", lambda self, env: True)
        with pytest.raises(CheckpointError, match="a-seed0: training stopped at step 1 of 2"):
            train_arms(cfg, {"a": tokens, "b": tokens})
    runs = train_arms(cfg, {"a": tokens, "b": tokens})  # the rerun finishes it
    assert [p.name for p in runs["a"]] == ["a-seed0"]
    with pytest.raises(OtherSettings, match="trained with other settings .*max_steps: 2 -> 4"):
        train_arms(ablation(tmp_path, "tokens=8192"), {"a": tokens, "b": tokens})


def test_a_budget_beyond_the_epoch_cap_is_refused(tokens):
    from refinery.manifest import read_manifest

    manifest = read_manifest(tokens)
    windows = [(b.tokens - 1) // 64 for b in manifest.buckets.values()]  # what the loader reads
    supply = sum(int(manifest.max_epochs * n) for n in windows) * 64
    assert supply < sum(b.tokens for b in manifest.buckets.values()) * manifest.max_epochs
    check_budget("ok", manifest, supply, 64)
    with pytest.raises(AblationError, match="arm small: .* exceed.*raise max_epochs="):
        check_budget("small", manifest, supply + 1, 64)


def test_a_mix_arm_s_budget_refusal_names_the_mix_stage_s_cap(tokens, tmp_path):
    """The mix stage's cap wins over max_epochs=: raising it, as advised, changed nothing."""
    import json
    import shutil

    from refinery.manifest import read_manifest

    mixed = tmp_path / "tokens"
    shutil.copytree(tokens, mixed)
    content = json.loads((mixed / "manifest.json").read_text())
    notes = {
        "planned by the mix stage's settings (mix/_mixture.json) on ...": "raise mix.max_epochs",
        "from the mix stage (mix/_mixture.json)": "raise mix.max_epochs",
        # the tokenize stage's own note names the mix stage too
        "anneal = pretrain until the mix stage names an annealing bucket": "raise max_epochs=",
    }
    for note, remedy in notes.items():
        (mixed / "manifest.json").write_text(json.dumps({**content, "mixtures_note": note}))
        manifest = read_manifest(mixed)
        with pytest.raises(AblationError, match=remedy):
            check_budget("mixed", manifest, window_supply(manifest, 64) + 1, 64)


def test_a_finished_run_on_tokens_made_anew_is_not_reused(tokens, tmp_path):
    """An arm re-curated and tokenized again into arms/<arm>/ while runs/<arm>-seed*/ stayed:
    the finished run was scored as if trained on the new tokens."""
    import shutil

    from training.synthetic import write_dataset

    cfg = ablation(tmp_path / "ablation", "tokens=4096")
    arm = tmp_path / "arm-tokens"
    shutil.copytree(tokens, arm)
    train_arms(cfg, {"a": arm, "b": tokens})
    shutil.rmtree(arm)
    write_dataset(arm, {"web": 30_000, "wiki": 15_000}, learnable=True, seed=4)  # other tokens
    with pytest.raises(OtherSettings, match="a-seed0 was trained on other tokens"):
        train_arms(cfg, {"a": arm, "b": tokens})
