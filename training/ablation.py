"""Curation ablation, training side: the same small model on each arm's tokens, several seeds,
equal token budgets, scored on one fixed reference set ("does the filtering help?").

The Spark side (jobs/ablate.py) tokenizes every arm with one shared tokenizer; this module
trains, scores and summarises. The verdict compares the difference of the arms' mean
bits-per-byte with the seed-to-seed spread, so a gap that seeds alone produce is not
reported as an effect (DataComp-LM and FineWeb ablations report seed variance the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refinery.config import (
    ConfigError,
    check_ranges,
    check_seed,
    load_config,
    resolve_path,
    user_path,
)
from refinery.errors import RefineryError
from refinery.manifest import Manifest
from refinery.results import write_results
from training import checkpoint as ckpt
from training.config import TrainConfig


@dataclass
class AblationConfig:
    out: str = ""  # ablation folder: tokenizer.json, arms/<name>/tokens, runs/, ablation.json
    arms: dict[str, str] = field(default_factory=dict)  # name -> documents Parquet folder
    reference: str = ""  # held-out text/JSONL/Parquet scored in bits per byte by every run
    mc: str = ""  # optional multiple-choice benchmark file or folder
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    train_config: str = "conf/train/tiny.yaml"
    train: list[str] = field(default_factory=list)  # key=value overrides of train_config
    tokens: int = 0  # training tokens per run; 0: train_config's max_steps * global batch
    tokenizer: str = ""  # a shared tokenizer.json; "": trained on a sample of the first arm
    curation: list[str] = field(default_factory=list)  # key=value overrides for tokenizing
    max_epochs: float = 50.0  # an arm may repeat this often to reach the budget
    eval_batch: int = 64  # sequences per forward pass when scoring the reference

    def __post_init__(self) -> None:
        self.out, self.tokenizer = user_path(self.out), user_path(self.tokenizer)
        if len(self.arms) < 2:
            raise ConfigError("arms: name at least two curation outputs to compare")
        if not self.seeds:
            raise ConfigError("seeds: at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must differ (one run per seed), got {self.seeds}")
        if not self.out or not self.reference:
            raise ConfigError("out= (ablation folder) and reference= (text file) are required")
        for seed in self.seeds:  # every run's seed, not only the first, which budget_of reads
            check_seed("seeds", seed, bits=64)
        check_ranges("", self, {"tokens": ">= 0", "max_epochs": "> 0", "eval_batch": "> 0"})


def load_ablation_config(path: str | None, overrides: list[str]) -> AblationConfig:
    """The config; an arm named twice on the command line is refused (the later path would
    replace the earlier one, and its arm vanish from the comparison)."""
    named = [o.split("=", 1)[0].strip() for o in overrides if o.strip().startswith("arms.")]
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        raise ConfigError(f"{', '.join(twice)} given twice: each arm needs a name of its own")
    return load_config(AblationConfig, path, overrides)


def train_config(cfg: AblationConfig, tokens_dir: Path, out: Path, seed: int) -> TrainConfig:
    """The arm's run: the base preset, its overrides, then data/out/seed and the shared budget."""
    overrides = [*cfg.train, f"data={tokens_dir}", f"out={out}", f"seed={seed}"]
    run = load_config(TrainConfig, resolve_path(cfg.train_config), overrides)
    if cfg.tokens:
        batch = run.train.global_batch_tokens
        if cfg.tokens % batch:
            raise ConfigError(
                f"tokens={cfg.tokens} must be a multiple of the preset's "
                f"train.global_batch_tokens ({batch}): every run trains whole steps"
            )
        run.max_steps = run.steps_for_tokens(cfg.tokens)
    run.loader.mixture = "pretrain"
    return run


class AblationError(RefineryError):
    """An ablation that cannot give every arm the same token budget."""


def budget_tokens(run: TrainConfig) -> int:
    return run.max_steps * run.train.global_batch_tokens


def budget_of(cfg: AblationConfig, tokens_dir: Path) -> int:
    """Training tokens per run (the same for every arm and seed)."""
    return budget_tokens(train_config(cfg, tokens_dir, Path(cfg.out), cfg.seeds[0]))


def window_supply(manifest: Manifest, seq_len: int) -> int:
    """Training tokens the pretrain buckets give within the epoch cap, as the loader reads
    them: whole windows of seq_len + 1 tokens, each bucket's capped at max_epochs passes."""
    windows = [
        max(0, (manifest.buckets[b].tokens - 1) // seq_len) for b in manifest.mixture("pretrain")
    ]
    return sum(int(manifest.max_epochs * n) for n in windows) * seq_len


def check_budget(arm: str, manifest: Manifest, tokens: int, seq_len: int) -> None:
    """Refuse before training when an arm cannot supply the budget within its epoch cap."""
    supply = window_supply(manifest, seq_len)
    if tokens > supply:
        # a mix stage's output carries its own cap, which wins over the tokenize stage's
        remedy = (
            "raise mix.max_epochs and mix that arm's documents again (the mix stage's cap "
            "wins over max_epochs=)"
            if manifest.mixtures_note.startswith(("from the mix stage", "planned by the mix stage"))
            else "raise max_epochs= (the arms' tokens carry it: remove OUT's arms/ and runs/, "
            "or choose another out=)"
        )
        raise AblationError(
            f"arm {arm}: {tokens:,} training tokens per run exceed what its pretrain buckets "
            f"supply ({supply:,} in whole windows of seq_len {seq_len} × max_epochs "
            f"{manifest.max_epochs:g}, in {manifest.root}); lower tokens=, or {remedy}"
        )


def train_arms(cfg: AblationConfig, token_dirs: dict[str, Path]) -> dict[str, list[Path]]:
    """Train every (arm, seed) not finished yet; returns each arm's run folders in seed order."""
    from refinery.manifest import read_manifest
    from training.train import run

    runs: dict[str, list[Path]] = {}
    for arm, tokens_dir in token_dirs.items():
        runs[arm] = []
        for seed in cfg.seeds:
            out = Path(cfg.out) / "runs" / f"{arm}-seed{seed}"
            run_cfg = train_config(cfg, tokens_dir, out, seed)
            ckpt.refuse_other_settings(out, run_cfg, read_manifest(tokens_dir))
            if ckpt.newest_step(out) != run_cfg.max_steps:
                print(f"ablate: training {arm} seed {seed} ({budget_tokens(run_cfg):,} tokens)")
                run(run_cfg, resume=True)
                ckpt.check_finished(out, run_cfg.max_steps)
            runs[arm].append(out)
    return runs


def check_inputs(cfg: AblationConfig) -> None:
    """Check the budget and read the reference and benchmark files before any tokenizing or
    training."""
    from refinery.mc_data import read_benchmarks
    from training.evaluation.bpb import read_documents

    budget_of(cfg, Path(cfg.out))  # the token budget makes whole steps
    read_documents(resolve_path(cfg.reference))
    if cfg.mc:
        read_benchmarks(resolve_path(cfg.mc))


def score_runs(cfg: AblationConfig, runs: dict[str, list[Path]]) -> dict[str, list[dict]]:
    """Bits per byte on the reference (and MC accuracy) of each run's final checkpoint."""
    from refinery.mc_data import read_benchmarks
    from training.evaluation.bpb import bits_per_byte, read_documents
    from training.evaluation.mc import score_benchmark
    from training.pretrained import load_pretrained

    reference = read_documents(resolve_path(cfg.reference))
    benchmarks = read_benchmarks(resolve_path(cfg.mc)) if cfg.mc else {}
    scores: dict[str, list[dict]] = {}
    for arm, outs in runs.items():
        scores[arm] = []
        for out in outs:
            loaded = load_pretrained(out)
            tokenizer = loaded.tokenizer()
            bpb = bits_per_byte(loaded.model, tokenizer, reference, cfg.eval_batch)["bpb"]
            row = {"run": str(out), "bpb": bpb}
            if benchmarks:
                row["mc"] = {
                    name: score_benchmark(loaded.model, tokenizer, items, 0, cfg.eval_batch)["acc"]
                    for name, items in benchmarks.items()
                }
            scores[arm].append(row)
    return scores


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single seed)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(scores: dict[str, list[dict]]) -> dict[str, Any]:
    """Per arm mean ± std of bpb (and MC acc); pairwise: is the gap beyond the seed spread?

    "Beyond the spread" means the two arms' seed ranges do not overlap and the gap exceeds
    twice the larger standard deviation: with 3 seeds a cautious reading, not a test. With one
    seed there is no spread to read a gap against: `beyond_spread` is None.
    """
    arms = {}
    for arm, rows in scores.items():
        bpb = [r["bpb"] for r in rows]
        if not all(math.isfinite(b) for b in bpb):  # NaN would scramble the ranking
            raise AblationError(f"arm {arm}: a run scored a bits per byte that is not finite {bpb}")
        mean, std = mean_std(bpb)
        entry = {"bpb_mean": mean, "bpb_std": std, "bpb_min": min(bpb), "bpb_max": max(bpb)}
        entry["seeds"] = len(rows)
        mc_names = sorted({name for r in rows for name in r.get("mc", {})})
        for name in mc_names:
            acc_mean, acc_std = mean_std([r["mc"][name] for r in rows])
            entry.setdefault("mc", {})[name] = {"acc_mean": acc_mean, "acc_std": acc_std}
        arms[arm] = entry
    ranked = sorted(arms, key=lambda a: arms[a]["bpb_mean"])
    comparisons = []
    for i, better in enumerate(ranked):
        for worse in ranked[i + 1 :]:
            a, b = arms[better], arms[worse]
            gap = b["bpb_mean"] - a["bpb_mean"]
            separated = a["bpb_max"] < b["bpb_min"] and gap > 2 * max(a["bpb_std"], b["bpb_std"])
            if min(a["seeds"], b["seeds"]) < 2:
                separated = None
            comparisons.append(
                {"lower_bpb": better, "higher_bpb": worse, "gap": gap, "beyond_spread": separated}
            )
    return {"arms": arms, "ranking": ranked, "comparisons": comparisons}


def run(cfg: AblationConfig, token_dirs: dict[str, Path]) -> dict[str, Any]:
    """Check every arm can supply the budget, train what is missing, score, write, print."""
    from refinery.manifest import read_manifest

    first = train_config(cfg, next(iter(token_dirs.values())), Path(cfg.out), cfg.seeds[0])
    budget = budget_tokens(first)
    for arm, tokens in token_dirs.items():
        check_budget(arm, read_manifest(tokens), budget, first.model.seq_len)
    summary = summarise(score_runs(cfg, train_arms(cfg, token_dirs)))
    summary["tokens_per_run"] = budget
    summary["arms_input"] = dict(cfg.arms)
    summary["reference"] = cfg.reference
    target = Path(cfg.out) / "ablation.json"
    write_results(target, summary)
    print(format_table(summary))
    print(f"ablate: results in {target}")
    return summary


def format_table(summary: dict[str, Any]) -> str:
    lines = [f"{'arm':<16} {'bpb mean':>9} {'± std':>7}  seeds"]
    for arm in summary["ranking"]:
        s = summary["arms"][arm]
        lines.append(f"{arm:<16} {s['bpb_mean']:>9.4f} {s['bpb_std']:>7.4f}  {s['seeds']}")
    for c in summary["comparisons"]:
        if c["beyond_spread"] is None:
            verdict = "one seed, no spread to read it against"
        else:
            verdict = f"{'beyond' if c['beyond_spread'] else 'within'} the seed-to-seed spread"
        lines.append(f"{c['lower_bpb']} < {c['higher_bpb']} by {c['gap']:.4f} bpb: {verdict}")
    return "\n".join(lines)
