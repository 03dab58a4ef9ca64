"""`refinery scaling --config conf/scaling/tiny.yaml [key=value ...]`: a scaling-law sweep.

Trains every model size for every token budget through the real trainer (`training.train.run`,
each point in its own folder `out/<point>/`), reads each point's final validation loss, fits
L(N, D) = E + A / N^alpha + B / D^beta (`training.scaling`) and writes `out/scaling.json` and
`out/scaling.png`. A point whose `point.json` exists is finished and skipped, and a point cut
short resumes from its newest checkpoint, so rerunning the command continues a sweep.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import torch

from refinery.cli import GivenOnce
from refinery.config import ConfigError, load_config, local_path, resolve_path, user_path
from refinery.errors import RefineryError
from refinery.manifest import Manifest, read_manifest
from refinery.results import write_results
from refinery.utf8 import read_utf8
from training import scaling
from training.checkpoint import (
    changed_settings,
    check_finished,
    list_checkpoints,
    refuse_other_settings,
)
from training.config import ModelConfig, TrainConfig
from training.data import validation_count
from training.model import Transformer
from training.train import run as train_run

# Kaplan et al. 2020 count N without the embedding (and, untied, the output projection);
# Chinchilla counts every parameter. Pearce & Song 2024 trace part of the gap between the two
# papers' tokens-per-parameter to that choice; at toy scale the embedding dominates the
# total, so the non-embedding count is the one that follows the law.
PARAMS_CONVENTION = "non-embedding parameters (Kaplan et al. 2020)"


@dataclass
class ModelSize:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 0  # 0: n_heads

    @property
    def name(self) -> str:
        kv = self.n_kv_heads or self.n_heads
        return f"d{self.d_model}-l{self.n_layers}-h{self.n_heads}-kv{kv}"


@dataclass
class ScalingConfig:
    data: str = ""  # tokens folder with manifest.json
    out: str = ""  # sweep folder: one folder per point, scaling.json, scaling.png
    base: str = "conf/train/tiny.yaml"  # the training preset every point starts from
    overrides: list[str] = field(default_factory=list)  # key=value on the preset, every point
    sizes: list[ModelSize] = field(default_factory=list)
    # tokens D per point (multiples of train.global_batch_tokens). Each point runs its own
    # full LR schedule to its budget: Hoffmann et al. 2022 found that reading losses off
    # one long cosine run (Kaplan et al. 2020) overestimates the loss of shorter budgets.
    tokens: list[int] = field(default_factory=list)
    compute: float = 0.0  # budget C = 6 N D (FLOPs) for the optimum; 0: the largest point's
    fit: scaling.FitConfig = field(default_factory=scaling.FitConfig)

    def __post_init__(self) -> None:
        self.data, self.out = user_path(self.data), user_path(self.out)


@dataclass
class Point:
    name: str
    size: ModelSize
    train: TrainConfig


def non_embedding_params(model: ModelConfig) -> int:
    """N in the Kaplan convention, counted on a model built without memory (meta device)."""
    with torch.device("meta"):
        net = Transformer(dataclasses.replace(model, vocab_size=model.vocab_size or 64))
    vocab_matrices = [net.embed] + ([net.lm_head] if net.lm_head is not None else [])
    return net.num_params() - sum(m.weight.numel() for m in vocab_matrices)


def plan(cfg: ScalingConfig) -> list[Point]:
    """One TrainConfig per (size, tokens), checked before anything trains."""
    if not cfg.data or not cfg.out:
        raise ConfigError("data= (tokens folder) and out= (sweep folder) are required")
    if not cfg.sizes or not cfg.tokens:
        raise ConfigError("sizes and tokens must each list at least one entry")
    scaling.check_fit_config(cfg.fit)
    if cfg.compute < 0:
        raise ConfigError(f"compute must be >= 0 (0: the largest point's 6 N D), got {cfg.compute}")
    base = resolve_path(cfg.base)
    points, names = [], set()
    for size in cfg.sizes:
        for i, tokens in enumerate(cfg.tokens):
            train = load_config(TrainConfig, base, cfg.overrides)
            batch = train.train.global_batch_tokens
            if tokens <= 0 or tokens % batch:
                raise ConfigError(
                    f"tokens[{i}] = {tokens} must be a positive multiple of the preset's "
                    f"train.global_batch_tokens ({batch})"
                )
            name = f"{size.name}-D{tokens}"
            if name in names:
                raise ConfigError(f"sizes/tokens list the point {name} twice")
            names.add(name)
            train.data, train.out = cfg.data, str(Path(cfg.out) / name)
            train.max_steps = tokens // batch
            for key in ("d_model", "n_layers", "n_heads", "n_kv_heads"):
                setattr(train.model, key, getattr(size, key))
            points.append(Point(name, size, train))
    if min(len(cfg.sizes), len(cfg.tokens)) < scaling.MIN_LEVELS:
        raise ConfigError(
            f"{len(cfg.sizes)} sizes and {len(cfg.tokens)} token budgets: {scaling.LEVELS_WHY}"
        )
    budgets = scaling.levels([math.log(tokens) for tokens in cfg.tokens])
    if budgets < scaling.MIN_LEVELS:
        raise ConfigError(
            f"the token budgets take {budgets} distinct values, those within 1% of the "
            f"smallest of their level counting as one: {scaling.LEVELS_WHY}"
        )
    params = {p.size.name: non_embedding_params(p.train.model) for p in points}
    distinct = scaling.levels([math.log(n) for n in params.values()])
    if distinct < scaling.MIN_LEVELS:  # sizes that differ only in their heads
        listed = ", ".join(
            f"{name}: {n:,}" for name, n in sorted(params.items(), key=itemgetter(1))
        )
        raise ConfigError(
            f"the sizes have {distinct} distinct {PARAMS_CONVENTION} counts, those within "
            f"1% of the smallest of their level counting as one ({listed}): {scaling.LEVELS_WHY}"
        )
    return points


class SweepError(RefineryError):
    """A point folder that does not belong to this sweep, or a run without validation."""


def training_seconds(out: Path) -> float:
    """Seconds the point's steps took, summed over metrics.jsonl: every run that trained it
    (one killed and resumed, or one whose point.json was lost after its last step)."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line).get("step_seconds", 0.0) for line in lines)


def final_record(out: Path) -> dict:
    """The last metrics.jsonl line: it holds the tokens seen and the final val_loss."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[-1]) if lines else {}
    if "val_loss" not in record:
        raise SweepError(
            f"{out / 'metrics.jsonl'}: the last step has no val_loss (is the manifest's "
            "validation split empty?)"
        )
    return record


def other_tokens(result: dict, data: str) -> bool:
    """Whether a finished point was trained on other tokens than `data` (not known when the
    tokens are gone: a rerun that only refits reads the points' records)."""
    if not os.path.isdir(local_path(data)):
        return False
    if "manifest_fingerprint" in result:
        return result["manifest_fingerprint"] != read_manifest(data).fingerprint
    then = result.get("config", {}).get("data", data)
    return os.path.realpath(local_path(then)) != os.path.realpath(local_path(data))


def run_point(point: Point) -> tuple[dict, bool]:
    """Train one point unless finished; returns (its result, whether it trained now)."""
    out = Path(point.train.out)
    done = out / "point.json"
    config = dataclasses.asdict(point.train)
    if done.is_file():
        try:
            result = json.loads(done.read_text())
        except json.JSONDecodeError as err:
            message = f"{done} is not valid JSON ({err}); remove {out} to retrain it"
            raise SweepError(message) from None
        # data= and out= as written aside (the same folders another way, a sweep moved): the
        # settings, and the tokens by their manifest's fingerprint (a record without one, by
        # their folder)
        changed = changed_settings(result.get("config", {}), point.train)
        if other_tokens(result, point.train.data):
            changed.append(f"data: other tokens than {point.train.data}")
        if changed:
            raise SweepError(
                f"{done} was trained with other settings ({'; '.join(changed)}); choose another "
                "out=, or remove that sweep's points to retrain them"
            )
        return result, False
    resume = bool(list_checkpoints(out))  # a point cut short continues from its checkpoint
    if resume:
        refuse_other_settings(out, point.train, read_manifest(point.train.data))
    train_run(copy.deepcopy(point.train), resume=resume)
    check_finished(out, point.train.max_steps)
    record = final_record(out)
    result = {
        "name": point.name,
        **dataclasses.asdict(point.size),
        "params": non_embedding_params(point.train.model),
        "tokens": record["tokens"],
        "val_loss": record["val_loss"],
        "val_bpb": record["val_bpb"],
        "seconds": training_seconds(out),
        "config": config,
        "manifest_fingerprint": read_manifest(point.train.data).fingerprint,
    }
    write_results(done, result)
    return result, True


def check_validation(points: list[Point]) -> None:
    """The fit reads each point's final validation loss: a validation split that holds no
    window for a point is said before any point trains, not after the first. A finished
    point is not read again (a refit reads its point.json alone, the tokens gone or not)."""
    manifests: dict[str, Manifest] = {}  # every point reads the sweep's one tokens folder
    for point in points:
        train = point.train
        if (Path(train.out) / "point.json").is_file():
            continue
        if train.train.eval_tokens == 0:
            raise SweepError(
                "train.eval_tokens=0 turns validation off, and the fit needs each point's "
                "validation loss"
            )
        if train.data not in manifests:
            manifests[train.data] = read_manifest(train.data)
        manifest = manifests[train.data]
        if validation_count(manifest, train.model.seq_len, train.train.eval_tokens) == 0:
            raise SweepError(
                f"{train.data}: its validation split ({manifest.validation.tokens} tokens) holds "
                f"no window of seq_len + 1 = {train.model.seq_len + 1} tokens for point "
                f"{point.name}, and the fit needs each point's validation loss: tokenize with "
                "a larger tokenize.validation_share"
            )


def run(cfg: ScalingConfig, log=print) -> dict:
    """Run (or resume) the sweep, fit, write scaling.json and scaling.png; return the report."""
    points = plan(cfg)
    check_validation(points)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, point in enumerate(points, 1):
        result, trained = run_point(point)
        status = f"trained in {result['seconds']:.1f} s" if trained else "already finished"
        log(
            f"[{i}/{len(points)}] {point.name}: N={result['params']} D={result['tokens']} "
            f"val_loss={result['val_loss']:.4f} ({status})"
        )
        results.append({k: v for k, v in result.items() if k != "config"})
    report = write_report(out, results, cfg.fit, cfg.compute, dataclasses.asdict(cfg))
    log(describe(report))
    return report


def write_report(
    out: Path, points: list[dict], fit: scaling.FitConfig, compute: float = 0.0, config=None
) -> dict:
    """Fit `points` (params, tokens, val_loss each) and write out/scaling.json and
    out/scaling.png; `compute` 0 takes the largest point's 6 N D as the budget."""
    params = [p["params"] for p in points]
    tokens = [p["tokens"] for p in points]
    fitted = scaling.fit_with_intervals(params, tokens, [p["val_loss"] for p in points], fit)
    compute = compute or max(6 * n * d for n, d in zip(params, tokens, strict=True))
    report = {
        "conventions": {
            "N": PARAMS_CONVENTION,
            "D": "tokens seen",
            "C": "6 N D with that N (Kaplan's C), not the trainer's FLOPs: "
            "flops_per_token also counts the output projection and attention",
        },
        "compute": compute,
        "points": points,
        "fit": scaling.summary(fitted, compute, fit),
        "config": config,
    }
    write_results(out / "scaling.json", report)
    scaling.plot(points, fitted.law, compute, out / "scaling.png")
    return report


def read_report(path: str | Path) -> dict:
    """The scaling.json at `path`, or in the sweep folder `path`, checked to be one."""
    path = resolve_path(path)
    if path.is_dir():
        path = path / "scaling.json"
    if not path.is_file():
        raise RefineryError(f"{path}: not found (refinery scaling writes it into its out= folder)")
    try:
        report = json.loads(read_utf8(path, RefineryError))
    except json.JSONDecodeError as err:
        raise RefineryError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(report, dict) or not {"fit", "points", "compute"} <= set(report):
        raise RefineryError(
            f"{path}: not a scaling.json of `refinery scaling` (no fit, points and compute)"
        )
    return report


def describe(report: dict) -> str:
    """The fit and the optimum in a few lines, with bootstrap intervals where there are any."""
    fit = report["fit"]
    intervals = fit["intervals"]

    def value(name: str, number: float, ranges: dict) -> str:
        lo_hi = ranges.get(name)
        return f"{name}={number:.4g}" + (f" [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else "")

    level = f" ({fit['settings']['confidence']:.0%} intervals)" if intervals else ""
    law = ", ".join(value(k, v, intervals) for k, v in fit["law"].items())
    lines = [f"fit{level}: {law}"]
    optimum = fit["optimum"]
    if optimum is None:
        lines.append("no compute-optimal allocation: a fitted exponent is not positive")
    else:
        keys = ("params", "tokens", "tokens_per_param", "loss")
        parts = ", ".join(value(k, optimum[k], optimum["intervals"]) for k in keys)
        lines.append(f"optimum for C={report['compute']:.4g}: {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery scaling", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", action=GivenOnce, help="YAML sweep config (conf/scaling/*.yaml)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(ScalingConfig, args.config, args.overrides)
    report = run(cfg)
    written = Path(cfg.out) / "scaling.json"
    print(f"wrote {written} and scaling.png ({len(report['points'])} points)")
    return 0


if __name__ == "__main__":
    from training.train import console

    sys.exit(console(main))
