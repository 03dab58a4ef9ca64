"""Scaling laws: fit L(N, D) = E + A / N^alpha + B / D^beta to (params, tokens, loss) points.

The fit is Hoffmann et al. 2022 (Chinchilla), approach 3: parameters a = log A, b = log B,
e = log E, alpha, beta minimise the Huber loss (delta 1e-3) of
    logsumexp(a - alpha log N, b - beta log D, e) - log L
with L-BFGS from a grid of initial values, keeping the best (here: every grid point descends a
few hundred Adam steps at once, and L-BFGS polishes the best of them). Confidence intervals
come from a seeded bootstrap: resample the points with replacement, refit, take percentiles.

The compute-optimal allocation for a budget C = 6 N D is the closed form of the same paper
(appendix D.2): N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G,
G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from refinery.errors import RefineryError

PARAMS = ("E", "A", "B", "alpha", "beta")

# The initialisation grid of Hoffmann et al. 2022 (approach 3): alpha, beta in {0, 0.5, ..., 2},
# e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}; 4500 starts.
GRID = {
    "a": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
    "b": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
    "e": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "alpha": [0.0, 0.5, 1.0, 1.5, 2.0],
    "beta": [0.0, 0.5, 1.0, 1.5, 2.0],
}


class ScalingFitError(RefineryError, ValueError):
    """Points that cannot be fitted (too few, non-positive, non-finite)."""


@dataclass
class FitConfig:
    huber_delta: float = 1e-3  # Hoffmann et al. 2022, approach 3
    # L-BFGS runs from the `starts` grid points with the lowest objective after `descent_steps`
    # Adam steps taken by all 4500 at once (L-BFGS from each, as the paper, takes minutes on a
    # CPU; from the 16 best grid points as they are, it stopped in a local minimum with a
    # quarter of the tokens per parameter of a better one on a tiny sweep)
    starts: int = 16
    descent_steps: int = 300
    max_iter: int = 200  # L-BFGS iterations per start
    bootstrap: int = 100  # refits on resampled points for the confidence intervals; 0: none
    # a bootstrap refit starts from the full fit and this many best grid points of its sample
    bootstrap_starts: int = 2
    confidence: float = 0.9  # two-sided interval level
    seed: int = 0  # bootstrap resampling


@dataclass(frozen=True)
class ComputeOptimal:
    """The allocation minimising L(N, D) subject to 6 N D = compute."""

    compute: float
    params: float
    tokens: float
    tokens_per_param: float
    loss: float


@dataclass(frozen=True)
class ScalingLaw:
    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, params, tokens):
        """Predicted loss at N = params, D = tokens (scalars or numpy arrays)."""
        n, d = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    @property
    def has_optimum(self) -> bool:
        """Loss falls with both N and D, so a budget has a finite best split."""
        finite = all(map(math.isfinite, self.as_dict().values()))
        return finite and self.alpha > 0 and self.beta > 0 and self.A > 0 and self.B > 0

    def optimum(self, compute: float) -> ComputeOptimal:
        """Closed form of Hoffmann et al. 2022 (appendix D.2) for C = 6 N D, in log space:
        a bootstrap refit far from the data can put N_opt beyond float range (then inf)."""
        if not compute > 0:
            raise ScalingFitError(f"compute budget must be positive, got {compute}")
        if not self.has_optimum:
            raise ScalingFitError(
                f"no compute-optimal allocation: exponents alpha={self.alpha:.3g}, "
                f"beta={self.beta:.3g} must both be positive (loss must fall with N and D)"
            )
        total = self.alpha + self.beta
        log_g = (math.log(self.alpha * self.A) - math.log(self.beta * self.B)) / total
        log_half = math.log(compute / 6)
        log_params = log_g + self.beta / total * log_half
        log_tokens = self.alpha / total * log_half - log_g
        model_term = math.log(self.A) - self.alpha * log_params
        data_term = math.log(self.B) - self.beta * log_tokens
        with np.errstate(over="ignore"):
            params, tokens, ratio, model, data = np.exp(
                [log_params, log_tokens, log_tokens - log_params, model_term, data_term]
            ).tolist()
        return ComputeOptimal(compute, params, tokens, ratio, self.E + model + data)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _log_terms(theta: torch.Tensor, log_n: torch.Tensor, log_d: torch.Tensor) -> torch.Tensor:
    """log L predicted for every start (rows of theta = a, b, e, alpha, beta) and point."""
    a, b, e, alpha, beta = (theta[..., i : i + 1] for i in range(5))
    model_term, data_term = a - alpha * log_n, b - beta * log_d
    terms = torch.stack([model_term, data_term, e.expand_as(model_term)])
    return torch.logsumexp(terms, dim=0)


def _objective(theta, log_n, log_d, log_l, delta: float) -> torch.Tensor:
    """Summed Huber loss of the log-residuals, one value per start."""
    residual = _log_terms(theta, log_n, log_d) - log_l
    return torch.nn.functional.huber_loss(
        residual, torch.zeros_like(residual), reduction="none", delta=delta
    ).sum(-1)


def _grid() -> torch.Tensor:
    rows = itertools.product(GRID["a"], GRID["b"], GRID["e"], GRID["alpha"], GRID["beta"])
    return torch.tensor(list(rows), dtype=torch.float64)


def _lbfgs(start: torch.Tensor, data, delta: float, max_iter: int) -> tuple[torch.Tensor, float]:
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-12,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        value = _objective(theta, *data, delta)
        value.backward()
        return value

    optimizer.step(closure)
    with torch.no_grad():
        value = _objective(theta, *data, delta).item()
    return theta.detach(), value


# E + A/N^alpha + B/D^beta is identifiable only from 3 or more distinct N and D: with two, A,
# alpha and E (or B, beta and E) trade off exactly, and the fit returns any of them.
MIN_LEVELS = 3
# values within 1% of a level's smallest are that level: two sizes that differ only in their
# heads (as many kv heads as heads, the default ffn_hidden) hold the same number of
# parameters but for QK-norm's per-head weights, under 0.7% apart; the margin keeps exactly
# 1% on this side of rounding
SAME_LEVEL = math.log(1.01) + 1e-9
LEVELS_WHY = (
    f"fitting L(N, D) = E + A/N^alpha + B/D^beta needs at least {MIN_LEVELS} model sizes and "
    f"{MIN_LEVELS} token budgets"
)


# (log N, log D) spread across their line below this share of the spread along it: a fixed
# tokens-per-parameter design, up to the rounding of budgets to whole steps
COLLINEAR = 1e-3
# a line within this sine (~3 degrees) of the N or D axis: one size or one budget, in effect
ONE_AXIS = 0.05


def levels(log_x) -> int:
    """How many distinct levels the log values take: from the smallest up, a value more than
    SAME_LEVEL above the level's first starts the next (neighbours closer than that do not
    chain many values into one level)."""
    count, first = 0, -math.inf
    for value in np.sort(log_x):
        if value - first > SAME_LEVEL:
            count, first = count + 1, value
    return count


def _one_rule(log_n: np.ndarray, log_d: np.ndarray) -> bool:
    """Whether the points lie on one line along which D grows with N (D = k N^b, b > 0): both
    terms then fall together, and A/N^alpha and B/D^beta trade off exactly. On a line where
    D falls as N grows (an IsoFLOP profile, D = C / 6N) they pull apart and can be fitted,
    unless it lies along an axis (one budget cut to whole steps: B, beta and E trade off)."""
    centred = np.stack([log_n - log_n.mean(), log_d - log_d.mean()])
    axes, spread, _ = np.linalg.svd(centred, full_matrices=False)
    along_axis = min(abs(axes[0, 0]), abs(axes[1, 0])) < ONE_AXIS
    return bool(spread[1] <= COLLINEAR * spread[0] and (axes[0, 0] * axes[1, 0] > 0 or along_axis))


def _log_points(params, tokens, losses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log N, log D, log L after checking the points can be fitted."""
    arrays = [np.asarray(x, dtype=np.float64).ravel() for x in (params, tokens, losses)]
    if len({len(x) for x in arrays}) != 1:
        raise ScalingFitError("params, tokens and losses must have the same length")
    if len(arrays[0]) < len(PARAMS):
        raise ScalingFitError(f"need at least {len(PARAMS)} points to fit 5 parameters")
    for name, x in zip(("params", "tokens", "losses"), arrays, strict=True):
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise ScalingFitError(f"{name} must be finite and positive, got {x.tolist()}")
    log_n, log_d = np.log(arrays[0]), np.log(arrays[1])
    for name, log_x in (("params", log_n), ("tokens", log_d)):
        if levels(log_x) < MIN_LEVELS:
            raise ScalingFitError(
                f"{name} takes {levels(log_x)} distinct value(s) (values within 1% of the "
                f"smallest of their level count as one); {LEVELS_WHY}"
            )
    if _one_rule(log_n, log_d):
        raise ScalingFitError(
            "the points lie on one line of log tokens against log params (one tokens-per-"
            "parameter rule, D = k N^b, for every size): the model and data terms trade off "
            "exactly and cannot be told apart; train some sizes on several token budgets"
        )
    return log_n, log_d, np.log(arrays[2])


def _fit_arrays(
    logs, cfg: FitConfig, starts: int, extra_start=None, descent_steps: int = 0
) -> tuple[torch.Tensor, float]:
    """Best (a, b, e, alpha, beta) and objective from L-BFGS runs started at the `starts`
    best grid points, after `descent_steps` of Adam from all of them (and `extra_start`)."""
    data = tuple(torch.from_numpy(x) for x in logs)
    grid = _descended(_grid(), data, cfg.huber_delta, descent_steps)
    with torch.no_grad():
        values = _objective(grid, *data, cfg.huber_delta)
        ranked = torch.argsort(torch.nan_to_num(values, nan=math.inf), stable=True)
    starts = list(grid[ranked[:starts]])
    if extra_start is not None:
        starts.append(extra_start)
    best, best_value = None, math.inf
    for start in starts:
        theta, value = _lbfgs(start, data, cfg.huber_delta, cfg.max_iter)
        if math.isfinite(value) and value < best_value:
            best, best_value = theta, value
    if best is None:
        raise ScalingFitError("the fit diverged from every start (non-finite objective)")
    return best, best_value


def _descended(grid: torch.Tensor, data, delta: float, steps: int) -> torch.Tensor:
    """Every start after `steps` Adam steps on its own objective, all in one batch: each
    settles into its basin, so the best of them after the descent, not before, seed L-BFGS."""
    if not steps:
        return grid
    theta = grid.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        values = _objective(theta, *data, delta)
        values[torch.isfinite(values)].sum().backward()
        optimizer.step()
    return theta.detach()


def _law(theta: torch.Tensor) -> ScalingLaw:
    """The law of a fit's (a, b, e, alpha, beta); a refit that ran off (a > 709) gets an
    infinite constant, which leaves it out of the intervals, and not an OverflowError."""
    a, b, e, alpha, beta = theta.tolist()
    with np.errstate(over="ignore"):
        big_e, big_a, big_b = np.exp([e, a, b]).tolist()
    return ScalingLaw(big_e, big_a, big_b, alpha, beta)


def _fitted_law(theta: torch.Tensor) -> ScalingLaw:
    """`_law` of the fit to all the points, which must be finite."""
    law = _law(theta)
    if not all(map(math.isfinite, law.as_dict().values())):
        raise ScalingFitError(
            f"the fit ran off to {law}: the losses do not fall with N and D as a power law "
            "(a diverged point, or losses that stay at log(vocabulary))"
        )
    return law


def check_fit_config(cfg: FitConfig) -> None:
    """Fail on impossible fit settings (a sweep checks them before anything trains)."""
    if not cfg.huber_delta > 0:
        raise ScalingFitError(f"fit.huber_delta must be positive, got {cfg.huber_delta}")
    if (
        cfg.starts < 1
        or cfg.max_iter < 1
        or cfg.bootstrap < 0
        or cfg.bootstrap_starts < 0
        or cfg.descent_steps < 0
    ):
        raise ScalingFitError(
            "fit.starts and fit.max_iter must be at least 1, fit.bootstrap and "
            "fit.bootstrap_starts and fit.descent_steps at least 0"
        )
    if not 0 < cfg.confidence < 1:
        raise ScalingFitError(f"fit.confidence must be in (0, 1), got {cfg.confidence}")
    if cfg.seed < 0:
        raise ScalingFitError(f"fit.seed must be >= 0, got {cfg.seed}")


def fit(params, tokens, losses, cfg: FitConfig | None = None) -> ScalingLaw:
    """The best L-BFGS fit of L(N, D) to the points (no bootstrap)."""
    cfg = cfg or FitConfig()
    check_fit_config(cfg)
    theta, _ = _fit_arrays(
        _log_points(params, tokens, losses), cfg, cfg.starts, descent_steps=cfg.descent_steps
    )
    return _fitted_law(theta)


@dataclass(frozen=True)
class FitResult:
    law: ScalingLaw
    objective: float  # summed Huber loss at the optimum
    intervals: dict[str, list[float]]  # parameter -> [low, high]; empty without bootstrap
    bootstrap: list[ScalingLaw]  # one refit per resample


def fit_with_intervals(params, tokens, losses, cfg: FitConfig | None = None) -> FitResult:
    """Fit, then refit `cfg.bootstrap` resamples (seeded) for percentile intervals."""
    cfg = cfg or FitConfig()
    check_fit_config(cfg)
    logs = _log_points(params, tokens, losses)
    theta, objective = _fit_arrays(logs, cfg, cfg.starts, descent_steps=cfg.descent_steps)
    rng = np.random.default_rng(cfg.seed)
    refits = []
    for _ in range(cfg.bootstrap):
        pick = _identifiable_resample(rng, logs)
        sample = tuple(x[pick] for x in logs)
        refits.append(_law(_fit_arrays(sample, cfg, cfg.bootstrap_starts, theta)[0]))
    return FitResult(_fitted_law(theta), objective, _intervals(refits, cfg.confidence), refits)


def _identifiable_resample(rng: np.random.Generator, logs, tries: int = 1000) -> np.ndarray:
    """Indices of a resample with replacement that keeps MIN_LEVELS distinct N and D, off one
    tokens-per-parameter line, drawn again until it does: the main fit refuses the others,
    where the terms trade off exactly and a refit returns any of them (alpha 19, A 1e80),
    which widened the intervals."""
    n = len(logs[0])
    for _ in range(tries):
        pick = rng.integers(0, n, size=n)
        spread = all(levels(x[pick]) >= MIN_LEVELS for x in logs[:2])
        if spread and not _one_rule(logs[0][pick], logs[1][pick]):
            return pick
    return np.arange(n)  # too few points to resample at all: the points themselves


def _percentiles(rows: list[dict[str, float]], keys, confidence: float) -> dict[str, list[float]]:
    """Per key, the two-sided percentile interval over the rows whose values are all finite: a
    refit far from the data can put an optimum at infinity, and inf - inf made a tail NaN."""
    rows = [row for row in rows if all(math.isfinite(row[k]) for k in keys)]
    if not rows:
        return {}
    tails = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    return {k: np.percentile([row[k] for row in rows], tails).tolist() for k in keys}


def _intervals(laws: list[ScalingLaw], confidence: float) -> dict[str, list[float]]:
    return _percentiles([law.as_dict() for law in laws], PARAMS, confidence)


def optimum_intervals(result: FitResult, compute: float, confidence: float) -> dict:
    """Percentile intervals of the compute-optimal allocation over the bootstrap refits
    (refits whose exponents are not positive, or whose optimum is not finite, have none and
    are left out: `summary` counts them)."""
    optima = [law.optimum(compute) for law in result.bootstrap if law.has_optimum]
    keys = ("params", "tokens", "tokens_per_param", "loss")
    return _percentiles([dataclasses.asdict(o) for o in optima], keys, confidence)


def refits_without_optimum(result: FitResult, compute: float) -> int:
    """Bootstrap refits with no finite compute-optimal allocation for `compute`."""
    return sum(
        not (law.has_optimum and all(map(math.isfinite, dataclasses.astuple(law.optimum(compute)))))
        for law in result.bootstrap
    )


def summary(result: FitResult, compute: float, cfg: FitConfig) -> dict:
    """The fit as JSON: law, objective, intervals, and the allocation for `compute` (None when
    the fitted exponents give no optimum) with its bootstrap intervals."""
    optimum = None
    if result.law.has_optimum:
        optimum = dataclasses.asdict(result.law.optimum(compute))
        optimum["intervals"] = optimum_intervals(result, compute, cfg.confidence)
        optimum["refits_without_optimum"] = refits_without_optimum(result, compute)
    return {
        "law": result.law.as_dict(),
        "objective": result.objective,
        "settings": dataclasses.asdict(cfg),
        "intervals": result.intervals,
        "optimum": optimum,
    }


def plot(points: list[dict], law: ScalingLaw, compute: float, path) -> None:
    """Write a PNG of two panels. Left: validation loss against compute 6 N D, each model
    size's points and fitted curve, and the compute-optimal frontier. Right: N_opt and D_opt
    against compute, with the budget marked. `points` hold params, tokens and val_loss."""
    # a Figure without pyplot: pyplot's backend is the caller's (a notebook's inline one)
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    sizes = sorted({p["params"] for p in points})
    c_points = [6 * p["params"] * p["tokens"] for p in points]
    grid = np.geomspace(min(c_points + [compute]) / 3, max(c_points + [compute]) * 3, 200)
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(sizes)))
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    for n, color in zip(sizes, colors, strict=True):
        mine = [p for p in points if p["params"] == n]
        compute_n = [6 * n * p["tokens"] for p in mine]
        left.scatter(compute_n, [p["val_loss"] for p in mine], color=color)
        left.plot(grid, law.loss(n, grid / (6 * n)), color=color, label=f"N={n:.3g}")
    left.set(xscale="log", xlabel="compute 6ND (FLOPs)", ylabel="validation loss (nats/token)")
    terms = f"{law.A:.3g}/N^{law.alpha:.3g} + {law.B:.3g}/D^{law.beta:.3g}"
    left.set_title(f"L = {law.E:.3g} + {terms}", fontsize=9)
    right.set(xscale="log", yscale="log", xlabel="compute 6ND (FLOPs)")
    if law.has_optimum:
        frontier = [law.optimum(c) for c in grid]
        left.plot(grid, [o.loss for o in frontier], "k--", label="compute-optimal")
        right.plot(grid, [o.params for o in frontier], label="N_opt (parameters)")
        right.plot(grid, [o.tokens for o in frontier], label="D_opt (tokens)")
        best = law.optimum(compute)
        right.scatter([compute, compute], [best.params, best.tokens], color="k", zorder=3)
        right.axvline(compute, color="grey", lw=0.8)
        right.set_title(f"budget {compute:.3g}: {best.tokens_per_param:.3g} tokens/parameter")
        right.legend(fontsize=8)
    else:
        right.set_title("no compute-optimal frontier: an exponent is not positive")
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
