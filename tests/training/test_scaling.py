"""Scaling-law fit on points drawn from known constants, the optimum, and the sweep command."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from train_helpers import REPO, read_metrics

from refinery.cli import main as refinery
from refinery.config import ConfigError, load_config
from training import scaling
from training.config import ModelConfig
from training.model import Transformer
from training.scaling_sweep import ScalingConfig, non_embedding_params, plan
from training.synthetic import write_dataset

# Hoffmann et al. 2022, approach 3
CHINCHILLA = scaling.ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
TINY_SWEEP = REPO / "conf" / "scaling" / "tiny.yaml"


def chinchilla_points(noise: float = 0.0, seed: int = 0):
    """An 8 x 8 grid of N in 1e6..1e9 and D in 1e8..1e11, with multiplicative noise."""
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, 8), np.geomspace(1e8, 1e11, 8))
    n, d = n.ravel(), d.ravel()
    loss = CHINCHILLA.loss(n, d)
    loss = loss * (1 + noise * np.random.default_rng(seed).standard_normal(loss.shape))
    return n, d, loss


def relative_error(law: scaling.ScalingLaw, name: str) -> float:
    return abs(getattr(law, name) / getattr(CHINCHILLA, name) - 1)


def test_fit_recovers_the_constants_without_noise():
    law = scaling.fit(*chinchilla_points())
    assert relative_error(law, "alpha") < 0.05 and relative_error(law, "beta") < 0.05
    for name in scaling.PARAMS:  # noiseless points pin every constant, not only the exponents
        assert relative_error(law, name) < 1e-3, name


def test_fit_descends_from_every_grid_point_before_l_bfgs():
    """A tiny sweep's points (a user's, conf/scaling/tiny.yaml on sample-crawl tokens): L-BFGS
    from the 16 best grid points as they were stopped at objective 1.6374e-4 and 7-9 tokens per
    parameter at 1e11. The better minimum lies further along a flat valley, where the CPU's
    rounding moves it: 28 tokens per parameter on an Intel VM, 19 on an AMD EPYC one."""
    points = [  # as float32 losses wrote them: rounded to 4 digits, they fit otherwise
        (4160, 20480, 8.203529357910156), (4160, 40960, 7.9290571212768555),
        (4160, 81920, 7.433083534240723), (16512, 20480, 7.9774394035339355),
        (16512, 40960, 7.527521133422852), (16512, 81920, 6.802678108215332),
        (30912, 20480, 7.953874588012695), (30912, 40960, 7.473607063293457),
        (30912, 81920, 6.7566609382629395), (98688, 20480, 7.479397773742676),
        (98688, 40960, 6.788470268249512), (98688, 81920, 6.22318696975708),
    ]  # fmt: skip
    params, tokens, losses = zip(*points, strict=True)
    cfg = scaling.FitConfig(bootstrap=0)
    result = scaling.fit_with_intervals(params, tokens, losses, cfg)
    assert result.objective < 1.630e-4
    assert result.law.optimum(1e11).tokens_per_param > 15
    stuck = scaling.fit_with_intervals(
        params, tokens, losses, dataclasses.replace(cfg, descent_steps=0)
    )
    assert stuck.objective > 1.637e-4 and stuck.law.optimum(1e11).tokens_per_param < 10


def test_fit_recovers_the_exponents_with_two_percent_noise():
    for seed in (0, 1, 2):
        law = scaling.fit(*chinchilla_points(noise=0.02, seed=seed))
        assert relative_error(law, "alpha") < 0.15, (seed, law)
        assert relative_error(law, "beta") < 0.15, (seed, law)


def test_bootstrap_intervals_are_seeded_and_bracket_the_fit():
    points = chinchilla_points(noise=0.02, seed=4)
    cfg = scaling.FitConfig(starts=4, bootstrap=6, seed=11)
    first = scaling.fit_with_intervals(*points, cfg)
    again = scaling.fit_with_intervals(*points, cfg)
    assert first.intervals == again.intervals and len(first.bootstrap) == 6
    other = scaling.fit_with_intervals(*points, dataclasses.replace(cfg, seed=12))
    assert other.intervals != first.intervals
    for name, (low, high) in first.intervals.items():
        assert low < high, name
    low, high = first.intervals["alpha"]
    assert low <= CHINCHILLA.alpha <= high
    summary = scaling.summary(first, 1e21, cfg)
    optimum = summary["optimum"]
    low, high = optimum["intervals"]["tokens_per_param"]
    assert low <= optimum["tokens_per_param"] <= high
    json.dumps(summary)  # what scaling.json stores


@pytest.mark.parametrize("compute", [1e18, 5.76e23, 1e26])
def test_optimum_spends_the_budget_and_minimises_the_loss(compute):
    best = CHINCHILLA.optimum(compute)
    assert 6 * best.params * best.tokens == pytest.approx(compute, rel=1e-12)
    assert best.tokens_per_param == pytest.approx(best.tokens / best.params)
    assert best.loss == pytest.approx(CHINCHILLA.loss(best.params, best.tokens))
    # a numeric search along 6 N D = C lands on the closed form
    params = best.params * np.geomspace(0.5, 2, 2001)
    losses = CHINCHILLA.loss(params, compute / (6 * params))
    assert params[np.argmin(losses)] == pytest.approx(best.params, rel=1e-3)
    assert losses.min() >= best.loss - 1e-12


def test_tokens_per_parameter_grows_with_compute_when_alpha_exceeds_beta():
    # D_opt / N_opt ~ C^((alpha - beta) / (alpha + beta)) (Hoffmann et al. 2022)
    small, large = CHINCHILLA.optimum(1e20), CHINCHILLA.optimum(1e24)
    ratio = large.tokens_per_param / small.tokens_per_param
    assert ratio == pytest.approx(1e4 ** ((0.34 - 0.28) / 0.62))


def test_no_optimum_without_positive_exponents():
    flat = dataclasses.replace(CHINCHILLA, beta=-0.1)
    with pytest.raises(scaling.ScalingFitError, match="beta"):
        flat.optimum(1e20)
    result = scaling.FitResult(flat, 0.0, {}, [])
    assert scaling.summary(result, 1e20, scaling.FitConfig())["optimum"] is None


def test_levels_count_values_within_1_percent_of_a_smaller_one_as_it():
    assert scaling.levels(np.log([1000, 1005, 1010])) == 1  # exactly 1% is within
    assert scaling.levels(np.log([1000, 1010, 1020] * 2)) == 2
    assert scaling.levels(np.log([100, 101, 102])) == 2
    # values 0.23% apart do not chain into one level: 1e9 to 2e9 spans 60 (each 1% + a step)
    assert scaling.levels(np.log(np.geomspace(1e9, 2e9, 300))) == 60
    assert scaling.levels([]) == 0


@pytest.mark.parametrize(
    "points, message",
    [
        (([1e6] * 4, [1e9] * 4, [3.0] * 4), "at least 5 points"),
        (([1e6] * 6, [1e9] * 6, [3.0, 2.0, 0.0, 1.0, 2.0, 2.0]), "losses"),
        (([1e6] * 6, [1e9] * 5, [3.0] * 6), "same length"),
        (([1e6] * 6, [1e9, math.nan, 1e9, 1e9, 1e9, 1e9], [3.0] * 6), "tokens"),
        (([1e6] * 5, [1e9, 2e9, 4e9, 8e9, 16e9], [3.0] * 5), "params takes 1"),
        (([1e6, 2e6, 4e6] * 2, [1e9] * 3 + [2e9] * 3, [3.0] * 6), "tokens takes 2 distinct"),
        (([1e6, 1.002e6, 4e6] * 2, [1e9, 2e9, 4e9] * 2, [3.0] * 6), "params takes 2 distinct"),
        # 20 tokens per parameter at every size: A/N^alpha and B/D^beta trade off exactly
        (
            ([1e7, 1e8, 1e9, 1e10, 3e10], [2e8, 2e9, 2e10, 2e11, 6e11], [3, 2.5, 2.2, 2, 1.9]),
            "line",
        ),
        # one 1e9 budget cut to whole steps of ever larger batches: D falls, but by < 1%
        (
            (
                [2.0**i * 1e6 for i in range(6)],
                [(1e9 // 2**b) * 2**b for b in range(16, 22)],
                [3, 2.6, 2.3, 2.1, 2.0, 1.95],
            ),
            "tokens takes 1 distinct",
        ),
        # D falls 2% as N doubles: levels apart, but a line along the N axis
        (
            (
                [2.0**i * 1e6 for i in range(6)],
                [1e9 * 0.98**i for i in range(6)],
                [3, 2.6, 2.3, 2.1, 2.0, 1.95],
            ),
            "line",
        ),
    ],
)
def test_unfittable_points_raise_a_clear_error(points, message):
    with pytest.raises(scaling.ScalingFitError, match=message):
        scaling.fit(*points)


def test_a_negative_bootstrap_seed_is_refused_before_the_sweep_trains():
    with pytest.raises(scaling.ScalingFitError, match="fit.seed must be >= 0, got -1"):
        scaling.check_fit_config(scaling.FitConfig(seed=-1))


def test_plot_writes_a_png(tmp_path):
    n, d, loss = chinchilla_points()
    points = [{"params": a, "tokens": b, "val_loss": c} for a, b, c in zip(n, d, loss, strict=True)]
    scaling.plot(points, CHINCHILLA, 1e21, tmp_path / "fit.png")
    scaling.plot(points, dataclasses.replace(CHINCHILLA, alpha=0.0), 1e21, tmp_path / "flat.png")
    for name in ("fit.png", "flat.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_non_embedding_params_leave_out_the_vocabulary_matrices():
    for tied in (True, False):
        cfg = ModelConfig(vocab_size=512, d_model=32, n_layers=2, n_heads=4, tie_embeddings=tied)
        model = Transformer(cfg)
        vocab = model.embed.weight.numel() * (1 if tied else 2)
        assert non_embedding_params(cfg) == model.num_params() - vocab
        assert non_embedding_params(dataclasses.replace(cfg, vocab_size=0)) == (
            model.num_params() - vocab
        )


def test_plan_checks_token_budgets_against_the_batch(tmp_path):
    base = [f"data={tmp_path}", f"out={tmp_path / 'out'}"]
    with pytest.raises(ConfigError, match=r"tokens\[1\] = 3000 .*\(2048\)"):
        plan(load_config(ScalingConfig, TINY_SWEEP, [*base, "tokens=[2048, 3000]"]))
    with pytest.raises(scaling.ScalingFitError, match="confidence"):
        plan(load_config(ScalingConfig, TINY_SWEEP, [*base, "fit.confidence=2"]))
    with pytest.raises(ConfigError, match="twice"):
        plan(load_config(ScalingConfig, TINY_SWEEP, [*base, "tokens=[2048, 2048]"]))
    for tokens in ("[2048]", "[2048, 4096]"):
        with pytest.raises(ConfigError, match=r"4 sizes and \d token budgets: .* at least 3"):
            plan(load_config(ScalingConfig, TINY_SWEEP, [*base, f"tokens={tokens}"]))
    with pytest.raises(ConfigError, match="compute must be >= 0"):
        plan(load_config(ScalingConfig, TINY_SWEEP, [*base, "compute=-5"]))
    heads_only = (  # heads change no parameter count but QK-norm's, by 0.1%: 2 distinct N
        "sizes=[{d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 4},"
        " {d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 2},"
        " {d_model: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2}]"
    )
    budgets = "tokens=[2048000, 2058240, 2068480]"  # 1000, 1005 and 1010 steps: one level
    with pytest.raises(ConfigError, match=r"token budgets take 1 distinct values, those within"):
        plan(load_config(ScalingConfig, TINY_SWEEP, [*base, budgets]))
    for qk_norm in ("true", "false"):
        cfg = load_config(ScalingConfig, TINY_SWEEP, [*base, heads_only])
        cfg.overrides.append(f"model.qk_norm={qk_norm}")
        with pytest.raises(ConfigError, match=r"2 distinct non-embedding parameters .* counts"):
            plan(cfg)
    points = plan(load_config(ScalingConfig, TINY_SWEEP, base))
    assert len(points) == 12 and points[0].train.max_steps == 10
    assert points[0].train.out == str(tmp_path / "out" / "d16-l1-h2-kv2-D20480")
    assert points[-1].train.model.d_model == 64 and points[-1].train.train.progress is False


@pytest.mark.parametrize("path", sorted((REPO / "conf" / "scaling").glob("*.yaml")), ids=str)
def test_every_shipped_sweep_config_plans(path, tmp_path):
    cfg = load_config(ScalingConfig, path, [f"data={tmp_path}", f"out={tmp_path / 'out'}"])
    points = plan(cfg)
    assert len(points) == len(cfg.sizes) * len(cfg.tokens) >= len(scaling.PARAMS)


SWEEP = [
    "sizes=[{d_model: 16, n_layers: 1, n_heads: 2, n_kv_heads: 2},"
    " {d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 2},"
    " {d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 2}]",
    "tokens=[4096, 8192, 16384]",
    "compute=1e10",
    "fit.bootstrap=3",
]


def sweep_args(tokens, out, *extra):
    return ["scaling", "--config", str(TINY_SWEEP), f"data={tokens}", f"out={out}", *SWEEP, *extra]


def test_a_sweep_without_validation_windows_stops_before_training(tmp_path, capsys):
    data = tmp_path / "tokens"
    write_dataset(data, {"web": 30_000}, validation_tokens=100)  # one document: 161 tokens
    long = "overrides=[model.seq_len=256, train.micro_batch=8]"
    assert refinery([*sweep_args(data, tmp_path / "sweep"), long]) == 2
    assert "its validation split (161 tokens) holds no window of seq_len + 1 = 257 tokens" in (
        capsys.readouterr().err
    )
    assert refinery([*sweep_args(data, tmp_path / "sweep"), "overrides=[train.eval_tokens=0]"]) == 2
    assert "train.eval_tokens=0 turns validation off" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_sweep_trains_fits_reports_and_resumes(tokens, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert refinery(sweep_args(tokens, out)) == 0
    report = json.loads((out / "scaling.json").read_text())
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    points = report["points"]
    assert len(points) == 9 and capsys.readouterr().out.count("trained in") == 9
    for point in points:
        final = read_metrics(out / point["name"])[-1]
        assert point["val_loss"] == final["val_loss"] and point["tokens"] == final["tokens"]
    assert sorted({p["tokens"] for p in points}) == [4096, 8192, 16384]
    assert report["compute"] == 1e10 and "Kaplan" in report["conventions"]["N"]
    fit = report["fit"]
    assert set(fit["law"]) == set(scaling.PARAMS) and set(fit["intervals"]) == set(scaling.PARAMS)
    law = scaling.ScalingLaw(**fit["law"])
    optimum = fit["optimum"]  # the loss falls with N and with D, so there is one
    assert 6 * optimum["params"] * optimum["tokens"] == pytest.approx(1e10)
    predicted = law.loss([p["params"] for p in points], [p["tokens"] for p in points])
    assert np.allclose(predicted, [p["val_loss"] for p in points], rtol=0.2)

    # rerun: nothing trains; a point removed is the only one trained again
    redo = out / points[2]["name"]
    (redo / "point.json").unlink()
    assert refinery(sweep_args(tokens, out)) == 0
    # its time is its steps', not this run's (which only found them done)
    steps = sum(r["step_seconds"] for r in read_metrics(redo))
    assert json.loads((redo / "point.json").read_text())["seconds"] == pytest.approx(steps)
    log = capsys.readouterr().out
    assert log.count("already finished") == 8 and log.count("trained in") == 1
    assert f"{points[2]['name']}: " in log.split("trained in")[0].splitlines()[-1]
    again = json.loads((out / "scaling.json").read_text())
    assert [p["val_loss"] for p in again["points"]] == [p["val_loss"] for p in points]

    # a changed preset does not silently reuse points trained with the old one
    assert refinery([*sweep_args(tokens, out), "overrides=[optim.lr=1e-3]"]) == 2
    assert "was trained with other settings (optim.lr: " in capsys.readouterr().err
    # the same folders written another way, or the sweep moved, reuse every point
    moved = out.parent / "moved"
    out.rename(moved)
    assert refinery(sweep_args(f"{tokens}/", moved)) == 0
    assert capsys.readouterr().out.count("already finished") == 9
    assert refinery(sweep_args(tmp_path / "gone", moved)) == 0  # the tokens gone: a refit
    assert capsys.readouterr().out.count("already finished") == 9
    moved.rename(out)
    # a point recorded before fingerprints were: its tokens known by their folder
    record = json.loads((out / points[1]["name"] / "point.json").read_text())
    del record["manifest_fingerprint"]
    record["config"]["data"] = str(out)  # some other folder
    (out / points[1]["name"] / "point.json").write_text(json.dumps(record))
    assert refinery(sweep_args(tokens, out)) == 2
    assert f"(data: other tokens than {tokens})" in capsys.readouterr().err
    record["config"]["data"] = f"{tokens}/."
    (out / points[1]["name"] / "point.json").write_text(json.dumps(record))
    # ...nor resume one cut short (its checkpoint is there, its point.json not yet)
    (out / points[0]["name"] / "point.json").unlink()
    assert refinery([*sweep_args(tokens, out), "overrides=[optim.lr=1e-3]"]) == 2
    assert "trained with other settings (optim.lr: " in capsys.readouterr().err
    (out / points[0]["name"] / "point.json").write_text("{not json")
    assert refinery(sweep_args(tokens, out)) == 2
    assert f"{points[0]['name']}/point.json is not valid JSON" in capsys.readouterr().err


def test_a_refit_whose_optimum_is_infinite_leaves_the_intervals_finite():
    """np.percentile between two infinite optima gave NaN, which the report wrote as bare
    `NaN`, not JSON; such refits are left out and counted."""
    law = scaling.ScalingLaw(3.0, 60.0, 900.0, 0.35, 0.45)
    far = scaling.ScalingLaw(3.0, 60.0, 1.0, 1e-3, 1e-3)
    assert math.isinf(far.optimum(1e11).params)
    result = scaling.FitResult(law, 0.0, {}, [law] * 18 + [far] * 2)
    intervals = scaling.optimum_intervals(result, 1e11, 0.9)
    assert all(math.isfinite(v) for pair in intervals.values() for v in pair)
    summary = scaling.summary(result, 1e11, scaling.FitConfig())
    assert summary["optimum"]["refits_without_optimum"] == 2
    json.loads(json.dumps(summary, allow_nan=False))


def test_a_refit_run_off_beyond_float_range_is_left_out_not_an_overflow_error():
    """A sweep with a diverged point had a bootstrap refit reach log A > 709: math.exp raised
    a bare OverflowError after every point had trained."""
    law = scaling.ScalingLaw(3.0, 60.0, 900.0, 0.35, 0.45)
    off = scaling._law(torch.tensor([800.0, 5.0, 1.0, 0.5, 0.5], dtype=torch.float64))
    assert math.isinf(off.A) and not off.has_optimum
    result = scaling.FitResult(
        law, 0.0, scaling._intervals([law, law, off], 0.9), [law] * 2 + [off]
    )
    summary = scaling.summary(result, 1e11, scaling.FitConfig())
    assert summary["optimum"]["refits_without_optimum"] == 1
    json.loads(json.dumps(summary, allow_nan=False))
    with pytest.raises(scaling.ScalingFitError, match="the fit ran off to"):
        scaling._fitted_law(torch.tensor([800.0, 5.0, 1.0, 0.5, 0.5], dtype=torch.float64))


def test_bootstrap_resamples_keep_three_sizes_and_budgets():
    grid = [(n, d) for n in (1e3, 1e4, 1e5) for d in (1e6, 1e7, 1e8)]
    logs = (np.log([n for n, _ in grid]), np.log([d for _, d in grid]), np.zeros(9))
    rng = np.random.default_rng(0)
    for _ in range(200):
        pick = scaling._identifiable_resample(rng, logs)
        assert len(set(logs[0][pick])) == 3 and len(set(logs[1][pick])) == 3
    # six sizes at 20 tokens per parameter, the middle one at two more budgets: a resample
    # without those two lies on the 20x line, and its refit trades the terms off
    sizes = [1e6, 3e6, 1e7, 3e7, 1e8, 3e8]
    n = np.log([*sizes, 1e7, 1e7])
    d = np.log([*(20 * x for x in sizes), 5e7, 8e8])
    for _ in range(200):
        pick = scaling._identifiable_resample(rng, (n, d, np.zeros(8)))
        assert not scaling._one_rule(n[pick], d[pick])


def test_an_isoflop_profile_is_one_line_that_can_be_fitted():
    """D = C / 6N falls as N grows: the two terms pull apart (only a rising line is refused)."""
    law = scaling.ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    params = np.geomspace(1e7, 1e10, 8)
    tokens = 1e20 / (6 * params)
    fitted = scaling.fit(params, tokens, law.loss(params, tokens))
    assert fitted.alpha == pytest.approx(0.34, rel=0.02) and fitted.beta == pytest.approx(
        0.28, rel=0.02
    )
