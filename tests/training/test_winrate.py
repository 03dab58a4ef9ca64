"""The length-controlled win rate on synthetic judgements whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.winrate import WinRateError, fit_length_glm, win_rates


def judgements(theta: float, phi: float, mean_extra: float, n: int = 600, seed: int = 0):
    """Bernoulli judgements from the GLM itself: baseline lengths ~ 800 chars, the model's
    answers `mean_extra` chars longer on average."""
    rng = np.random.default_rng(seed)
    baseline = rng.normal(800, 200, n).clip(50)
    model = (baseline + rng.normal(mean_extra, 250, n)).clip(50)
    delta = model - baseline
    logit = theta + phi * np.tanh(delta / delta.std(ddof=1))
    wins = rng.random(n) < 1 / (1 + np.exp(-logit))
    return wins.astype(float), model, baseline


def test_verbose_model_wins_only_by_length():
    preference, model, baseline = judgements(theta=0.0, phi=3.0, mean_extra=400)
    result = win_rates(preference, model, baseline, seed=1)
    assert result.win_rate > 75
    assert abs(result.lc_win_rate - 50) < 2.5 * result.lc_win_rate_stderr + 1
    assert result.glm.phi == pytest.approx(3.0, abs=0.8)


def test_better_model_at_equal_lengths_keeps_its_win_rate():
    rng = np.random.default_rng(2)
    lengths = rng.normal(800, 200, 500)
    preference = (rng.random(500) < 0.7).astype(float)
    result = win_rates(preference, lengths, lengths)
    assert result.win_rate > 60
    assert result.lc_win_rate == pytest.approx(result.win_rate, abs=0.5)
    assert result.glm.phi == 0.0 and result.glm.length_sd == 0.0


def test_better_model_with_lengths_the_judge_ignores():
    preference, model, baseline = judgements(theta=1.0, phi=0.0, mean_extra=0)
    result = win_rates(preference, model, baseline)
    assert result.lc_win_rate == pytest.approx(100 / (1 + np.exp(-1.0)), abs=5)
    assert result.lc_win_rate == pytest.approx(result.win_rate, abs=3)


def test_soft_preferences_recover_the_parameters():
    rng = np.random.default_rng(3)
    baseline = rng.normal(800, 200, 400)
    model = baseline + rng.normal(100, 300, 400)
    delta = model - baseline
    probability = 1 / (1 + np.exp(-(0.5 + 1.5 * np.tanh(delta / delta.std(ddof=1)))))
    glm = fit_length_glm(probability, model, baseline, ridge=0.0)
    assert glm.theta == pytest.approx(0.5, abs=1e-6)
    assert glm.phi == pytest.approx(1.5, abs=1e-6)


def test_one_side_winning_everything_stays_finite():
    result = win_rates(np.ones(50), np.linspace(600.0, 1200.0, 50), np.full(50, 300.0))
    assert result.win_rate == 100
    assert 95 < result.lc_win_rate < 100


@pytest.mark.parametrize(("preference", "n"), [(0.9, 1), (1.0, 5), (0.95, 20)])
def test_the_same_length_difference_everywhere_leaves_the_raw_rate(preference, n):
    """Length and side are confounded: the feature is dropped, and no ridge pulls theta."""
    result = win_rates(np.full(n, preference), np.full(n, 10.0), np.full(n, 5.0))
    assert result.glm.phi == 0
    assert result.lc_win_rate == pytest.approx(result.win_rate) == pytest.approx(100 * preference)


def test_one_judgement_has_no_standard_error():
    result = win_rates([0.8], [500.0], [300.0])
    assert result.win_rate == 80 and result.n == 1
    assert result.win_rate_stderr is None and result.lc_win_rate_stderr is None
    two = win_rates([0.8, 0.6], [500.0, 200.0], [300.0, 300.0])
    assert two.win_rate_stderr > 0 and two.lc_win_rate_stderr > 0


def test_bootstrap_is_seeded():
    preference, model, baseline = judgements(theta=0.3, phi=1.0, mean_extra=100, n=200)
    first = win_rates(preference, model, baseline, seed=5)
    assert win_rates(preference, model, baseline, seed=5) == first
    assert win_rates(preference, model, baseline, seed=6).lc_win_rate_stderr != (
        first.lc_win_rate_stderr
    )


@pytest.mark.parametrize(
    ("preference", "model", "baseline", "message"),
    [
        ([], [], [], "no judgements"),
        ([0.5, 1.0], [1.0], [1.0, 2.0], "2 preferences but 1 model"),
        ([1.5], [1.0], [1.0], r"\[0, 1\]"),
    ],
)
def test_bad_judgements_are_refused(preference, model, baseline, message):
    with pytest.raises(WinRateError, match=message):
        win_rates(preference, model, baseline)
