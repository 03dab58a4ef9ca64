"""Annealing: `refinery anneal --from DIR_OR_CKPT [--config FILE] data=... out=... max_steps=N`.

Continues a pretraining checkpoint (weights and AdamW moments) on the manifest's `anneal`
mixture while the learning rate decays from the one the checkpoint last trained at (or from
`optim.lr=X` given on the command line) to zero over max_steps, or over `anneal.tokens`
tokens (linear, or 1-sqrt with `anneal.decay=1-sqrt`): the cool-down of a warmup-stable-decay
run, or of a cosine run cut short, as OLMo 2 and Llama 3 anneal. The source run's config is
the base; a `--config` YAML file of train settings is laid over it, then the command-line
keys. The last step trains at start lr / max_steps with a
linear decay, about half that with 1-sqrt (zero would be the step after it). With
`anneal.average_last=K` (K >= 2) the weights of the last K anneal checkpoints, written every
`ckpt_every` steps, are averaged into `out/averaged/` once the anneal reaches max_steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from refinery.cli import GivenOnce
from refinery.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    local_path,
    merge_mapping,
    parse_override,
    read_yaml,
    resolve_path,
)
from refinery.errors import RefineryError
from refinery.manifest import read_manifest
from training import checkpoint as ckpt
from training.config import TrainConfig
from training.train import console, run

# Settings the anneal sets itself: an override of one is said, not silently dropped.
OWN_SETTINGS = ("schedule.kind", "schedule.warmup_steps", "schedule.min_lr_ratio")


def _sets(given: dict, key: str) -> bool:
    """Whether the overrides `given` (as `apply_overrides` nests them) set the dotted `key`,
    however they were spelt (`optim.lr =1e-4`, `optim={lr: 1e-4}`)."""
    node: object = given
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def tokens_beside(source: Path, then: dict) -> str:
    """The source run's `data`, found where it lies next to the source's run folder as it did
    when it trained (`runs/demo/{train,tokens}` moved or copied together), when the tokens
    there have the checkpoint's manifest; else the path the run recorded. A copy of a run
    read the original's tokens (gone once the scratch folder was purged)."""
    data, out = then.get("data") or "", then.get("out") or ""
    if not data or not out:
        return data
    where = os.path.relpath(os.path.abspath(local_path(data)), os.path.abspath(local_path(out)))
    beside = os.path.normpath(source.resolve().parent / where)
    try:
        same = read_manifest(beside).fingerprint == ckpt.load_meta(source).get(
            "manifest_fingerprint"
        )
    except (RefineryError, OSError):
        return data
    if not same or os.path.realpath(beside) == os.path.realpath(local_path(data)):
        return data
    print(f"anneal: reading {beside}, the source's tokens beside its run folder", file=sys.stderr)
    return beside


def anneal_config(
    source: Path, overrides: list[str], layer: dict | None = None, resume: bool = False
) -> TrainConfig:
    """The source run's config + the `layer` of a config file + overrides, switched to a
    decay-to-zero schedule (`resume`: over the token budget left, `budget_left`)."""
    given = apply_overrides(TrainConfig, copy.deepcopy(layer or {}), overrides)  # set, nested
    ignored = [key for key in OWN_SETTINGS if _sets(given, key)]
    if ignored:
        print(
            f"anneal: {', '.join(ignored)} ignored: the anneal decays to zero from its "
            "source's last lr or optim.lr= (anneal.decay picks linear or 1-sqrt)",
            file=sys.stderr,
        )
    if _sets(given, "loader.mixture"):
        print(
            "anneal: loader.mixture= ignored: the anneal reads the manifest's mixture named by "
            "anneal.mixture (default `anneal`); set that instead",
            file=sys.stderr,
        )
    data = ckpt.load_config_dict(source)
    if not _sets(given, "data"):
        data["data"] = tokens_beside(source, data)
    for key in ("out", "max_steps", "ckpt_every"):
        data.pop(key)  # the anneal's own folder and budget, not the pretraining run's
    if ckpt.load_meta(source).get("init_from"):  # an anneal's: its budget and averaging were
        for key in ("tokens", "average_last"):  # its own (a pretraining run's plan them)
            data.get("anneal", {}).pop(key, None)
    merge_mapping(data, layer or {})
    apply_overrides(TrainConfig, data, overrides)
    cfg = from_dict(TrainConfig, data)
    if not cfg.out:
        raise ConfigError("out= (the anneal's own run folder) is required")
    ckpt.refuse_source_as_out(Path(cfg.out), source)
    if not _sets(given, "optim.lr"):
        cfg.optim.lr = ckpt.last_lr(source) or cfg.optim.lr
    cfg.schedule.kind = cfg.anneal.decay
    cfg.schedule.warmup_steps = 0
    cfg.schedule.min_lr_ratio = 0.0
    cfg.loader.mixture = cfg.anneal.mixture
    if cfg.anneal.tokens:
        if _sets(given, "max_steps"):
            print(
                f"anneal: max_steps ignored: anneal.tokens={cfg.anneal.tokens} sets the length",
                file=sys.stderr,
            )
        step = cfg.train.global_batch_tokens
        if cfg.anneal.tokens < step:
            raise ConfigError(
                f"anneal.tokens={cfg.anneal.tokens} is less than one step of "
                f"train.global_batch_tokens={step}"
            )
        cfg.max_steps = cfg.steps_for_tokens(cfg.anneal.tokens)
        if cfg.anneal.tokens % step:
            print(
                f"anneal: anneal.tokens={cfg.anneal.tokens} is {cfg.max_steps} whole steps of "
                f"{step} tokens: {cfg.max_steps * step} tokens",
                file=sys.stderr,
            )
    if not _sets(given, "train.profile_start"):  # the source's window, in its own steps
        cfg.train.profile_start = 0
    if cfg.train.keep_last:  # 0 keeps every checkpoint already
        cfg.train.keep_last = max(cfg.train.keep_last, cfg.anneal.average_last)
    if resume:  # the steps the averaging is checked against
        budget_left(cfg)
    check_averaging(cfg)
    return cfg


def budget_left(cfg: TrainConfig) -> None:
    """On a resume with `anneal.tokens`: max_steps = the steps taken + whole steps of this
    run's batch for the tokens left, so a resume with another train.global_batch_tokens keeps
    the budget (counted afresh, it over- or undershot it, or stopped before the step reached)."""
    found = ckpt.list_checkpoints(cfg.out)
    if not cfg.anneal.tokens or not found:
        return
    state = ckpt.load_torch(found[-1][1], "state.pt")
    left = max(0, cfg.anneal.tokens - state["tokens_seen"])
    steps = state["step"] + left // cfg.train.global_batch_tokens
    if steps != cfg.max_steps and os.environ.get("RANK", "0") == "0":
        print(
            f"anneal: {state['tokens_seen']:,} of anneal.tokens={cfg.anneal.tokens:,} trained "
            f"by step {state['step']}: the rest is {steps - state['step']} steps of "
            f"{cfg.train.global_batch_tokens} tokens (max_steps={steps})",
            file=sys.stderr,
        )
    cfg.max_steps = steps


def check_averaging(cfg: TrainConfig) -> None:
    """Refuse an `average_last` the anneal's checkpoints cannot supply (an average of fewer
    checkpoints than asked for would pass silently)."""
    k = cfg.anneal.average_last
    if k < 2:
        return
    if not cfg.train.save_final:
        raise ConfigError(
            f"anneal.average_last={k} averages up to the last step: it needs train.save_final=true"
        )
    every = cfg.ckpt_every
    written = (cfg.max_steps // every + bool(cfg.max_steps % every)) if every else 1
    if cfg.max_steps < k:
        raise ConfigError(
            f"anneal.average_last={k} needs {k} checkpoints, but max_steps={cfg.max_steps} "
            f"writes at most {cfg.max_steps} (one per step)"
        )
    if written < k:
        raise ConfigError(
            f"anneal.average_last={k} needs {k} checkpoints, but ckpt_every={every} over "
            f"max_steps={cfg.max_steps} writes {written}: set ckpt_every <= {cfg.max_steps // k}"
        )


def average_checkpoints(out: Path, k: int) -> Path:
    """Uniform average of the weights of the newest `k` scheduled checkpoints in `out` (a
    preemption checkpoint between them is not one) -> out/averaged/."""
    found = ckpt.scheduled_checkpoints(out)[-k:]
    if len(found) < k:  # an earlier launch of this anneal kept fewer (train.keep_last)
        raise ckpt.CheckpointError(
            f"anneal.average_last={k}, but {out} holds {len(found)} checkpoints of its schedule "
            f"(steps {[step for step, _ in found]}): average those with "
            f"anneal.average_last={len(found)} --resume, or keep more with train.keep_last"
        )
    total: dict[str, torch.Tensor] = {}
    for _, path in found:
        for name, tensor in ckpt.load_weights(path).items():
            total[name] = total.get(name, 0) + tensor.double()
    weights = {name: (t / len(found)).float() for name, t in total.items()}
    newest = found[-1][1]
    target = out / "averaged"
    tmp = out / ".tmp-averaged"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    ckpt.save_weights(weights, tmp / "model.safetensors")
    for name in ("config.json", "tokenizer.json"):
        if (newest / name).is_file():
            (tmp / name).write_bytes((newest / name).read_bytes())
    meta = {**ckpt.load_meta(newest), "averaged_steps": [step for step, _ in found]}
    (tmp / ckpt.META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def say_starting_lr(source: Path, cfg: TrainConfig) -> None:
    """Where the decay starts, and why it may be far from the source run's peak: a source
    stopped in its warmup or decay (a finished WSD or cosine run is already cooled), or an
    optim.lr= that warms the model back up."""
    peak, then = ckpt.load_config_dict(source)["optim"]["lr"], ckpt.last_lr(source)
    line = f"anneal: lr {cfg.optim.lr:g} -> 0 over {cfg.max_steps} steps"
    if then is None:
        line += f" (optim.lr: {source} does not record its last lr)"
    elif cfg.optim.lr > 1.1 * then:
        line += f"; {source} ended at lr {then:g}, so this warms the model back up"
    elif cfg.optim.lr == then and then < 0.9 * peak:
        line += (
            f" (where {source} stopped, {then / peak:.0%} of its peak {peak:g}; "
            "optim.lr= starts elsewhere)"
        )
    print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery anneal", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="run folder or ckpt-<step>")
    parser.add_argument(
        "--config",
        action=GivenOnce,
        help="YAML file of train settings laid over the source run's config",
    )
    parser.add_argument("--data", help="tokens folder (same as data=...)")
    parser.add_argument("--resume", action="store_true", help="continue out's newest anneal ckpt")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    source = ckpt.resolve_checkpoint(args.source)
    if not (source / "optimizer.pt").is_file() and "averaged_steps" in ckpt.load_meta(source):
        raise ckpt.CheckpointError(
            f"{source} is an average of checkpoints, weights only: an anneal continues a "
            "training checkpoint's optimizer and data; --from one of its run's ckpt-<step>"
        )
    given = [str(value) for key, value in map(parse_override, args.overrides) if key == "data"]
    folder = os.path.realpath(local_path(args.data or ""))
    if args.data and any(os.path.realpath(local_path(d)) != folder for d in given):
        raise ConfigError(f"--data {args.data} and data={given[-1]} name two tokens folders")
    overrides = ([f"data={args.data}"] if args.data else []) + args.overrides
    layer = None
    if args.config:
        args.config = resolve_path(args.config)
        layer = read_yaml(args.config)
    try:
        cfg = anneal_config(source, overrides, layer, args.resume)
    except ConfigError as err:
        if not args.config:
            raise
        raise ConfigError(f"{err} (in {source}'s config + {args.config} + overrides)") from None
    if os.environ.get("RANK", "0") == "0":
        say_starting_lr(source, cfg)
    mixtures = read_manifest(cfg.data).mixtures
    if cfg.loader.mixture == "anneal" and "anneal" not in mixtures:
        if os.environ.get("RANK", "0") == "0":
            print(
                f"{cfg.data}: the manifest has no `anneal` mixture; annealing on `pretrain`",
                file=sys.stderr,
            )
        cfg.loader.mixture = "pretrain"
    out = run(cfg, resume=args.resume, init_from=source)
    if cfg.anneal.average_last > 1 and os.environ.get("RANK", "0") == "0":
        newest = ckpt.list_checkpoints(out)[-1][0]
        if newest == cfg.max_steps:
            averaged = average_checkpoints(out, cfg.anneal.average_last)
            print(
                f"averaged the last {cfg.anneal.average_last} checkpoints: {averaged} "
                f"(--from {averaged} uses it; --from {out} is the newest checkpoint)"
            )
        else:  # stopped early (SIGTERM): --resume finishes the anneal, then averages
            print(f"{out}: stopped at step {newest} of {cfg.max_steps}; not averaged yet")
    return 0


if __name__ == "__main__":
    sys.exit(console(main))
