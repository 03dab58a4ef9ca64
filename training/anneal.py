"""Annealing: `refinery anneal --from DIR_OR_CKPT data=... out=... max_steps=N [key=value ...]`.

Continues a pretraining checkpoint (weights and AdamW moments) on the manifest's `anneal`
mixture while the learning rate decays from `optim.lr` to zero over max_steps, or over
`anneal.tokens` tokens (linear, or 1-sqrt with `anneal.decay=1-sqrt`): the cool-down of a
warmup-stable-decay run. The source run's config is the base; command-line keys override it.
With `anneal.average_last=K` the weights of the last K anneal checkpoints are averaged into
`out/averaged/` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from refinery.config import apply_overrides, from_dict
from refinery.manifest import read_manifest
from training import checkpoint as ckpt
from training.config import TrainConfig
from training.train import console, run


def anneal_config(source: Path, overrides: list[str]) -> TrainConfig:
    """The source run's config + overrides, switched to a decay-to-zero schedule."""
    data = ckpt.load_config_dict(source)
    for key in ("max_steps", "ckpt_every"):
        data.pop(key)  # the anneal's own budget, not the pretraining one
    apply_overrides(TrainConfig, data, overrides)
    cfg = from_dict(TrainConfig, data)
    cfg.schedule.kind = cfg.anneal.decay
    cfg.schedule.warmup_steps = 0
    cfg.schedule.min_lr_ratio = 0.0
    cfg.loader.mixture = cfg.anneal.mixture
    if cfg.anneal.tokens:
        cfg.max_steps = max(1, cfg.anneal.tokens // cfg.train.global_batch_tokens)
    if cfg.train.keep_last:  # 0 keeps every checkpoint already
        cfg.train.keep_last = max(cfg.train.keep_last, cfg.anneal.average_last)
    return cfg


def average_checkpoints(out: Path, k: int) -> Path:
    """Uniform average of the weights of the newest `k` checkpoints in `out` -> out/averaged/."""
    found = ckpt.list_checkpoints(out)[-k:]
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
    save_file(weights, tmp / "model.safetensors")
    for name in ("config.json", "tokenizer.json"):
        if (newest / name).is_file():
            (tmp / name).write_bytes((newest / name).read_bytes())
    meta = {**ckpt.load_meta(newest), "averaged_steps": [step for step, _ in found]}
    (tmp / ckpt.META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery anneal", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="run folder or ckpt-<step>")
    parser.add_argument("--data", help="tokens folder (same as data=...)")
    parser.add_argument("--resume", action="store_true", help="continue out's newest anneal ckpt")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    source = ckpt.resolve_checkpoint(args.source)
    overrides = ([f"data={args.data}"] if args.data else []) + args.overrides
    cfg = anneal_config(source, overrides)
    mixtures = read_manifest(cfg.data).mixtures
    if cfg.loader.mixture == "anneal" and "anneal" not in mixtures:
        print(
            f"{cfg.data}: the manifest has no `anneal` mixture; annealing on `pretrain`",
            file=sys.stderr,
        )
        cfg.loader.mixture = "pretrain"
    out = run(cfg, resume=args.resume, init_from=source)
    if cfg.anneal.average_last > 1 and os.environ.get("RANK", "0") == "0":
        average_checkpoints(out, cfg.anneal.average_last)
    return 0


if __name__ == "__main__":
    sys.exit(console(main))
