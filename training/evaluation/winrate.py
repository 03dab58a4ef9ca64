"""Pairwise win rates: the raw win rate and AlpacaEval's length-controlled (LC) win rate.

A judge that prefers longer answers rewards verbosity. AlpacaEval 2 LC (Dubois et al. 2024,
"Length-Controlled AlpacaEval") fits a logistic GLM to the judge's preferences,

    logit P(model beats baseline) = theta + phi * tanh(dlen / sd(dlen)) [+ psi * difficulty],

and reports sigma(theta): the win rate the judge would give if both answers had the same
length. We fit theta and phi only. AlpacaEval's instruction-difficulty term (psi times a
per-instruction effect estimated from many models' judgements against the same baseline) needs
a leaderboard of other models, which a single comparison does not have; without it the LC win
rate is still length-controlled, just not adjusted for instruction difficulty.

Lengths are in characters, as in AlpacaEval. Preferences are soft labels in [0, 1] (a judge
probability, or 0.5 for a tie).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refinery.errors import RefineryError

# A weak ridge on (theta, phi) keeps the fit finite when one side wins every pair (the MLE is
# then at infinity); with a few hundred judgements it moves sigma(theta) by well under 0.1 points.
RIDGE = 1e-2
BOOTSTRAP_SAMPLES = 200


class WinRateError(RefineryError, ValueError):
    """Judgements that cannot give a win rate (none, mismatched lengths, labels outside [0, 1])."""


@dataclass(frozen=True)
class LengthGLM:
    theta: float  # the model's log-odds of winning at equal length
    phi: float  # how much the judge's preference follows the length difference
    length_sd: float  # sd of the length difference the tanh term is scaled by


@dataclass(frozen=True)
class WinRates:
    n: int
    win_rate: float  # x100
    win_rate_stderr: float | None  # x100: sd of the preferences / sqrt(n), as AlpacaEval has it
    lc_win_rate: float  # x100: `length_controlled`, sigma(theta) unless the feature is constant
    lc_win_rate_stderr: float | None  # x100: its sd over bootstrap resamples
    glm: LengthGLM


def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))


def length_feature(len_model: np.ndarray, len_baseline: np.ndarray) -> tuple[np.ndarray, float]:
    """tanh(dlen / sd(dlen)) and the sd; a zero feature when every difference is the same."""
    delta = np.asarray(len_model, float) - np.asarray(len_baseline, float)
    sd = float(delta.std(ddof=1)) if delta.size > 1 else 0.0
    if sd == 0.0:
        return np.zeros_like(delta), 0.0
    return np.tanh(delta / sd), sd


def fit_length_glm(
    preference: np.ndarray, len_model: np.ndarray, len_baseline: np.ndarray, ridge: float = RIDGE
) -> LengthGLM:
    """Ridge-regularised maximum likelihood for (theta, phi) by Newton's method: the
    log-likelihood is concave, so a few steps from zero reach the optimum."""
    y = np.asarray(preference, float)
    feature, sd = length_feature(len_model, len_baseline)
    x = np.stack([np.ones_like(feature), feature], axis=1)
    beta = np.zeros(2)
    for _ in range(100):
        p = _sigmoid(x @ beta)
        gradient = x.T @ (y - p) - ridge * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return LengthGLM(theta=float(beta[0]), phi=float(beta[1]), length_sd=sd)


def length_controlled(glm: LengthGLM, preference: np.ndarray) -> float:
    """sigma(theta); the mean preference when the length difference is the same for every pair
    (the feature is dropped: phi = 0), which the ridge would otherwise pull towards 0.5 (one
    instruction won outright gave 0.96)."""
    return float(preference.mean()) if glm.length_sd == 0 else float(_sigmoid(glm.theta))


def _check(preference, len_model, len_baseline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(preference, float)
    a = np.asarray(len_model, float)
    b = np.asarray(len_baseline, float)
    if y.ndim != 1 or y.size == 0:
        raise WinRateError("no judgements to compute a win rate from")
    if a.shape != y.shape or b.shape != y.shape:
        raise WinRateError(f"{y.size} preferences but {a.size} model and {b.size} baseline lengths")
    if not np.all((y >= 0) & (y <= 1)):
        raise WinRateError("preferences must lie in [0, 1] (1: the model's answer is better)")
    return y, a, b


def win_rates(
    preference,
    len_model,
    len_baseline,
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
) -> WinRates:
    """Raw and length-controlled win rates (x100) of the model over the baseline, one judgement
    per instruction. The LC standard error resamples instructions with replacement (seeded)
    and refits, sd(dlen) included, so it covers the whole estimator. One judgement has no
    spread to estimate: both standard errors are then None (the harness's rule for accuracy)."""
    y, a, b = _check(preference, len_model, len_baseline)
    n = y.size
    glm = fit_length_glm(y, a, b)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(samples if n > 1 else 0):
        pick = rng.integers(0, n, n)
        boot.append(length_controlled(fit_length_glm(y[pick], a[pick], b[pick]), y[pick]))
    return WinRates(
        n=n,
        win_rate=100 * float(y.mean()),
        win_rate_stderr=100 * float(y.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
        lc_win_rate=100 * length_controlled(glm, y),
        lc_win_rate_stderr=100 * float(np.std(boot, ddof=1)) if len(boot) > 1 else None,
        glm=glm,
    )
