"""Pretraining loop: `refinery train [--config FILE] [--from CKPT] [key=value ...] [--resume]`.

Also `torchrun --nproc_per_node N -m training.train ...` (multi-node: add --nnodes and a
rendezvous endpoint; the code path is the same). One process per device; DDP or FSDP2
(`train.parallel`) when WORLD_SIZE > 1. Every optimizer step appends one JSON line to
`out/metrics.jsonl`; checkpoints go to `out/ckpt-<step>/`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from refinery.cli import GivenOnce
from refinery.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    local_path,
    read_yaml,
    resolve_path,
    set_dotted,
    set_sections,
)
from refinery.errors import RefineryError, first_on_node, with_user_errors
from refinery.manifest import Manifest, ManifestError, read_manifest, verified_tokenizer
from training import checkpoint as ckpt
from training.config import ModelConfig, ScheduleConfig, TrainConfig, TrainLoopConfig
from training.data import TokenLoader, validation_count, validation_windows
from training.float8 import convert_to_float8, rounding_seed
from training.model import Transformer
from training.profiler import StepProfiler
from training.schedule import lr_at, schedule_note, set_lr


class TrainingDiverged(RefineryError):
    """The loss or the gradient norm became NaN or infinite."""

    every_rank = True  # both are all-reduced: every rank stops at the same step


@dataclass
class Distributed:
    rank: int
    local_rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_choice: str) -> Distributed:
    """Join the torchrun process group when there is one; pick this process's device."""
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device=cuda, but this torch ({torch.__version__}) sees no CUDA GPU")
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(rank=rank, local_rank=local_rank, world=world, device=device)


class SpikeGuard:
    """Skip an update whose loss sits more than `zscore` standard deviations above the mean
    of the recent window (a bad batch or an instability); the window holds accepted losses."""

    def __init__(self, window: int, min_history: int, zscore: float, history=(), skips: int = 0):
        self.losses = deque(history, maxlen=window)
        self.min_history, self.zscore = min_history, zscore
        self.skips_in_a_row = skips

    def is_spike(self, loss: float) -> bool:
        if self.zscore <= 0 or len(self.losses) < max(2, self.min_history):
            return False
        mean = sum(self.losses) / len(self.losses)
        std = math.sqrt(sum((x - mean) ** 2 for x in self.losses) / (len(self.losses) - 1))
        return std > 0 and (loss - mean) / std > self.zscore

    def accept(self, loss: float) -> None:
        self.losses.append(loss)
        self.skips_in_a_row = 0

    def skip(self) -> None:
        self.skips_in_a_row += 1

    def mean(self) -> float:
        return sum(self.losses) / len(self.losses)


def last_good(out: Path) -> str:
    found = ckpt.list_checkpoints(out)
    return f"Last good checkpoint: {found[-1][1] if found else 'none (no checkpoint written yet)'}"


class StopRequest:
    """SIGTERM (a scheduler preempting the job) or a first Ctrl-C (SIGINT) asks for a
    checkpoint at the end of the step; a second Ctrl-C stops at once, as without this.

    Ranks may receive the signal during different steps, so they agree (all-reduce max) before
    acting: every rank saves and stops after the same step.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.requested = False
        self.received: str | None = None  # the signal's name, on the rank that got it
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT:
            if self.requested:
                raise KeyboardInterrupt
            if first_on_node():  # a terminal's Ctrl-C reaches all of a node's ranks
                print(
                    "\nCtrl-C: stopping after this step with a checkpoint (Ctrl-C again: at once)",
                    file=sys.stderr,
                    flush=True,
                )
        self.requested = True
        self.received = signal.Signals(signum).name

    def agreed(self, env: Distributed | None = None) -> bool:
        """Whether to stop after this step (`env` None: a single-process run)."""
        if env is None or env.world == 1:
            return self.requested
        flag = torch.tensor(float(self.requested), device=env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def save_or_stop(self, env: Distributed | None, step: int, on_schedule: bool, save) -> bool:
        """After `step`: `save(step, preemption=...)` when on schedule or when the ranks agree
        to stop (a preemption checkpoint, off the schedule); True when the run should stop."""
        stopping = self.agreed(env)
        if on_schedule or stopping:
            save(step, preemption=not on_schedule)
        if stopping and (env is None or env.is_main):
            print(
                f"stopped by {self.received or 'a signal to another rank'} after step {step}, "
                "checkpoint saved; --resume continues",
                file=sys.stderr,
            )
        return stopping

    def restore(self) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)


def lock_out(
    out: Path, env: Distributed, held: contextlib.ExitStack, seen: list[tuple[int, Path]]
) -> None:
    """Rank 0 takes `out`'s run lock (`checkpoint.run_lock`, `seen` its checkpoints found at
    start) for the rest of the run; every rank learns whether it could, so that none goes on
    alone into the collectives."""
    refused = None
    try:
        held.enter_context(ckpt.run_lock(out, env.is_main, seen))
    except ckpt.CheckpointError as err:
        refused = err
    if env.world > 1:
        flag = torch.tensor(float(refused is not None), device=env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and refused is None:
            refused = ckpt.CheckpointError(f"{out} is in use by another run (rank 0 said why)")
            refused.every_rank = False  # each rank says it, so that none seems to hang unsaid
    if refused is not None:
        raise refused


def resolve_vocab(cfg: TrainConfig, manifest: Manifest) -> None:
    """Fill model.vocab_size from the manifest, rounded up to a multiple of 64 (GPU shapes)."""
    vocab = manifest.tokenizer.vocab_size
    if cfg.model.vocab_size == 0:
        cfg.model.vocab_size = 64 * math.ceil(vocab / 64)
    elif cfg.model.vocab_size < vocab:
        raise ConfigError(f"model.vocab_size {cfg.model.vocab_size} < the tokenizer's {vocab}")


def batch_shape(cfg: TrainConfig, world: int) -> tuple[int, int]:
    """(global windows per step, accumulation steps) for the configured global batch."""
    per_pass = cfg.train.micro_batch * cfg.model.seq_len * world
    if cfg.train.global_batch_tokens % per_pass:
        raise ConfigError(
            f"train.global_batch_tokens {cfg.train.global_batch_tokens} must be a multiple of "
            f"micro_batch * seq_len * world = {per_pass}"
        )
    accum = cfg.train.global_batch_tokens // per_pass
    return cfg.train.global_batch_tokens // cfg.model.seq_len, accum


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW with weight decay on matrices only: norms and the embedding are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=cfg.optim.lr,
        betas=tuple(cfg.optim.betas),
        eps=cfg.optim.eps,
        fused=device.type == "cuda",
    )


def check_float8(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 9):
        name = torch.cuda.get_device_name(device)
        raise ConfigError(
            f"train.float8 needs compute capability 8.9+ (Ada, Hopper); {name} lacks it"
        )


def set_precision(model: Transformer, loop: TrainLoopConfig, device: torch.device) -> None:
    """Apply the train.* choices of how (not what) a freshly built model computes: float8
    linear layers in the blocks and/or the output projection, the residual stream's dtype under
    autocast, and activation checkpointing."""
    if loop.float8 or loop.float8_head:
        check_float8(device)
    if loop.float8:
        convert_to_float8(model.blocks)
    model.float8_head = loop.float8_head
    model.float8_head_rounding = loop.float8_head_rounding
    model.autocast_residual = loop.autocast_residual
    model.checkpoint_blocks = loop.activation_checkpointing


def compile_arguments(mode: str) -> dict:
    """torch.compile keyword arguments for `train.compile_mode` (it takes a mode or options,
    never both)."""
    if mode == "coordinate-descent":
        return {"options": {"coordinate_descent_tuning": True}}
    if mode == "max-autotune":
        return {"mode": "max-autotune-no-cudagraphs"}
    return {}


def wrap_parallel(model: torch.nn.Module, cfg: TrainConfig, env: Distributed):
    """Compile and shard/replicate. Returns the module to call; `model` keeps its parameters."""
    if env.world > 1 and cfg.train.parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        options = {"mp_policy": fsdp_mixed_precision()} if env.device.type == "cuda" else {}
        for block in model.blocks:
            fully_shard(block, **options)
        fully_shard(model, **options)
    if cfg.train.compile:
        runner = torch.compile(model, **compile_arguments(cfg.train.compile_mode))
    else:
        runner = model
    if env.world > 1 and cfg.train.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.local_rank] if env.device.type == "cuda" else None
        # idle experts run on 0 rows; the only buffers, RoPE's tables, are the same on every
        # rank: no broadcast before each forward (torch 2.13 renamed the switch)
        renamed = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        no_sync = {"forward_sync_buffers" if renamed else "broadcast_buffers": False}
        runner = DistributedDataParallel(runner, device_ids=ids, **no_sync)
    return runner


def fsdp_mixed_precision():
    """Gather bf16 parameters for compute and reduce gradients in fp32. Block inputs keep
    their dtype (FSDP would cast them to bf16): the residual stream is fp32 unless
    train.autocast_residual, and RoPE's cos/sin stay fp32, as under DDP."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(
        param_dtype=torch.bfloat16, reduce_dtype=torch.float32, cast_forward_inputs=False
    )


FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def load_model_state(model, optimizer, source: Path, with_optimizer: bool) -> None:
    """Load full (unsharded) weights, and optionally optimizer state, from a checkpoint. The
    optimizer keeps its own settings (betas, eps, weight decay, fused): loading would put the
    checkpoint's back, so an override on resume or anneal, or a CUDA resume of a CPU run's
    checkpoint, would be named and then not take effect."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, ckpt.load_weights(source), options=options)
    if with_optimizer:
        state = ckpt.load_torch(source, "optimizer.pt")
        settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        set_optimizer_state_dict(model, optimizer, state, options=options)
        for group, own in zip(optimizer.param_groups, settings, strict=True):
            group.update(own)


def check_same_manifest(source: Path, manifest: Manifest, data: str) -> None:
    meta = ckpt.load_meta(source)
    if meta.get("manifest_fingerprint") != manifest.fingerprint:
        raise ckpt.CheckpointError(
            f"refusing to resume: {source} was trained on a manifest with fingerprint "
            f"{meta.get('manifest_fingerprint')}, but {data}/manifest.json has fingerprint "
            f"{manifest.fingerprint}; point data= at the original tokens folder, or start a "
            "new run (anneal with `refinery anneal --from` to change data on purpose)"
        )


# model.* keys that shape no weight: how experts are trained, which a resume or an anneal may
# change (dropless for the anneal, another balancing weight)
TRAINING_ONLY_MODEL_KEYS = ("model.moe.capacity_factor", "model.moe.aux_loss_weight")


def settings_changed(source: Path, cfg: TrainConfig) -> list[str]:
    """The settings `cfg` changes from `source`'s config ("key: then -> now"); a different
    model is an error, since its weights could not load or would compute another function."""
    changed = ckpt.changed_settings(ckpt.load_config_dict(source), cfg)
    shape = [
        change
        for change in changed
        if change.startswith("model.") and not change.startswith(TRAINING_ONLY_MODEL_KEYS)
    ]
    if shape:
        raise ckpt.CheckpointError(
            f"{source} holds a different model ({'; '.join(shape)}): drop those model.* "
            "overrides, or start a new run"
        )
    return changed


PRETRAINING_ADVICE = (
    "To go on from where it stopped, `refinery anneal --from` it (or plan runs that may grow "
    "with schedule.kind=wsd, whose lr stays flat until its decay)"
)


ANNEAL_ADVICE = (
    "An anneal decays to zero over its steps: a resume with another max_steps, anneal.tokens "
    "or train.global_batch_tokens moves the rest of the decay"
)


def say_changed_settings(
    changed: list[str], step: int, then: dict, cfg, advice: str = PRETRAINING_ADVICE
) -> None:
    """On stderr: the settings a resume changes from its checkpoint's (`then`), and what they
    do to the learning rate (`schedule_jump`)."""
    if not changed:
        return
    print(f"resuming with changed settings: {'; '.join(changed)}", file=sys.stderr)
    jump = schedule_jump(step, then, cfg, advice)
    if jump:
        print(jump, file=sys.stderr)


def schedule_jump(step: int, then: dict, cfg, advice: str = PRETRAINING_ADVICE) -> str | None:
    """What a resume's changed settings do to the learning rate, when they move it more than
    5% from what the run's own schedule (`then`: the checkpoint's max_steps, optim and
    schedule settings) had for the next step: the schedule is a function of the step and
    max_steps, so a longer max_steps moves a cosine or decaying run back up its curve, as does
    another schedule, and a shorter one (an anneal's, with a larger global batch) moves it on
    down. `cfg`: a TrainConfig or a PostTrainConfig (max_steps, optim.lr, schedule)."""
    if step >= cfg.max_steps:
        return None
    schedule_then = from_dict(ScheduleConfig, then.get("schedule", {}), "schedule.")
    planned = lr_at(step, then["max_steps"], then["optim"]["lr"], schedule_then)
    now = lr_at(step, cfg.max_steps, cfg.optim.lr, cfg.schedule)
    if planned / 1.05 <= now <= 1.05 * planned:
        return None
    said = (
        f"resume: step {step + 1} trains at lr {now:g}, where the run's schedule had "
        f"{planned:g}: the {cfg.schedule.kind} schedule over max_steps={cfg.max_steps}"
    )
    if now < planned:
        same_curve = cfg.optim.lr == then["optim"]["lr"] and cfg.schedule == schedule_then
        return f"{said} is further down its decay" if same_curve else f"{said} lowers it"
    return f"{said} warms the model back up. {advice}"


def check_same_tokenizer(source: Path, manifest: Manifest) -> None:
    meta = ckpt.load_meta(source)
    if meta.get("tokenizer_sha256") != manifest.tokenizer.sha256:
        raise ckpt.CheckpointError(
            f"{source} used tokenizer sha256 {meta.get('tokenizer_sha256')}, the data uses "
            f"{manifest.tokenizer.sha256}: token ids would not mean the same thing"
        )


def continued_cursor(
    source: Path, cfg: TrainConfig, manifest: Manifest, loader: TokenLoader, say: bool = True
):
    """Where an anneal starts reading. With its source run's seed (the same shuffle of each
    bucket), each bucket whose shards are the source's goes on after the windows the source
    already trained on, and counts them against max_epochs, instead of replaying its start;
    other buckets, or another seed, start from the beginning. `say`: print what starts over
    (one worker of the job does)."""
    cursor = loader.initial_cursor()
    then = ckpt.load_config_dict(source)
    consumed = ckpt.load_torch(source, "state.pt")["loader"]["consumed"]
    if then.get("seed") != cfg.seed:  # another shuffle of every bucket: its counts mean nothing
        read = sorted(n for n, c in consumed.items() if c and n in manifest.buckets)
        if read and say:
            print(
                f"seed={cfg.seed} is not {source}'s seed={then.get('seed')}: buckets {read} "
                "are read from their start, in another order",
                file=sys.stderr,
            )
        return cursor
    meta = ckpt.load_meta(source)
    if meta.get("manifest_fingerprint") == manifest.fingerprint:
        same = set(manifest.buckets)
    else:  # other mixtures over the same shards keep their place; changed buckets start over
        now = bucket_sha256(manifest)
        if "bucket_sha256" in meta:
            same = {n for n, digest in now.items() if meta["bucket_sha256"].get(n) == digest}
        else:  # a checkpoint before 2026-12-07: its data folder as it is now
            same = same_buckets(then.get("data"), manifest)
        restarted = sorted(
            n for n, c in consumed.items() if c and n in set(manifest.buckets) - same
        )
        if restarted and say:
            print(
                f"{cfg.data} differs from {source}'s data: buckets {restarted} are read from "
                "their start",
                file=sys.stderr,
            )
        gone = sorted(n for n, c in consumed.items() if c and n not in manifest.buckets)
        if gone and say:  # a bucket renamed (one `anneal` became `anneal.<domain>`) starts over
            print(
                f"{cfg.data} has no buckets {gone}, which {source} read: their documents, "
                "if here under other names, are read from their start",
                file=sys.stderr,
            )
    cursor["consumed"].update((n, int(c)) for n, c in consumed.items() if n in same)
    return cursor


def bucket_sha256(manifest: Manifest) -> dict[str, str]:
    """Each bucket's shards (names, token and document counts, sha256) as one digest: what a
    checkpoint records, so a run continuing it knows which buckets are the ones it read,
    whatever has become of the folder it read them from."""
    return {
        name: hashlib.sha256(
            json.dumps(
                [(e.path.name, e.tokens, e.documents, e.sha256) for e in split.shards]
            ).encode()
        ).hexdigest()
        for name, split in manifest.buckets.items()
    }


def same_buckets(source_data: str | None, manifest: Manifest) -> set[str]:
    """The buckets of `manifest` whose shards are those of the same bucket in the tokens
    folder `source_data` (names, token and document counts; the tokenizer is checked apart)."""
    if not source_data:
        return set()
    try:
        then = read_manifest(source_data)
    except ManifestError:
        return set()

    def shards(m: Manifest, name: str) -> list[tuple[str, int, int]]:
        return [(e.path.name, e.tokens, e.documents) for e in m.buckets[name].shards]

    return {
        n for n in manifest.buckets if n in then.buckets and shards(then, n) == shards(manifest, n)
    }


def data_notes(cfg: TrainConfig, manifest: Manifest, loader: TokenLoader) -> list[str]:
    """What the data will not give this run: buckets of the mixture too small for one window
    or capped at none by a max_epochs under 1, and validation figures when the held-out split
    holds no window (an `eval_tokens` under one is refused with the config)."""
    seq_len = cfg.model.seq_len
    notes = [
        f"{cfg.data}: bucket {name!r} ({share:.1%} of mixture {cfg.loader.mixture!r}) holds "
        f"fewer than seq_len + 1 = {seq_len + 1} tokens: it is never sampled, and the other "
        "buckets share its weight"
        for name, share in loader.unsampled.items()
    ]
    shares = loader.weights / loader.weights.sum()
    notes += [
        f"{cfg.data}: bucket {name!r} ({share:.1%} of mixture {cfg.loader.mixture!r}) holds "
        f"{bucket.num_windows} window(s) of seq_len + 1, which max_epochs={manifest.max_epochs} "
        "caps at none: it is sampled only once every other bucket is read out"
        for name, share, bucket, cap in zip(
            loader.names, shares, loader.buckets, loader.caps, strict=True
        )
        if share > 0 and bucket.num_windows and not cap
    ]
    if cfg.train.eval_tokens and not validation_count(manifest, seq_len, cfg.train.eval_tokens):
        notes.append(
            f"{cfg.data}: the validation split holds {manifest.validation.tokens} tokens, "
            f"less than one window of seq_len + 1 = {seq_len + 1}: no val_loss or val_bpb "
            "will be logged (more documents, or a larger tokenize.validation_share, give one)"
        )
    return notes


def read_out_note(
    source: Path, cfg: TrainConfig, manifest: Manifest, loader: TokenLoader, cursor: dict
) -> str | None:
    """The buckets a continued run's source already read max_epochs times: never sampled, so
    never said at a step. None when there are none, or when all are (sampling then goes on
    past the cap, and the first step says so)."""
    read_out = loader.capped(cursor)
    if not read_out or len(read_out) == len(loader.readable()):
        return None
    shares = dict(zip(loader.names, loader.weights / loader.weights.sum(), strict=True))
    listed = ", ".join(f"{n} ({shares[n]:.1%})" for n in read_out)
    return (
        f"{source} already read {listed} of mixture {cfg.loader.mixture!r} "
        f"max_epochs={manifest.max_epochs:g} times: they are not sampled, and the other "
        "buckets share their weight"
    )


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines after the checkpoint being resumed, so each step appears exactly once."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by the kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


class MetricsLog:
    """metrics.jsonl (every line flushed, so a killed run keeps what it logged) + TensorBoard."""

    def __init__(self, out: Path, start_step: int, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.file = open(out / "metrics.jsonl", "a") if enabled else None  # noqa: SIM115
        self.tb = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self.tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


@torch.no_grad()
def evaluate(
    runner, windows, cfg: TrainConfig, env: Distributed, token_bytes: torch.Tensor
) -> dict:
    """Mean validation loss (nats/token) over all ranks' windows and bits per byte of the
    bytes their targets stand for (`token_bytes` per id). A rank with fewer windows than
    another runs as many forwards, on padding that counts for nothing: FSDP gathers each
    layer's weights in every rank's forward together."""
    runner.eval()
    micro = cfg.train.micro_batch
    forwards = torch.tensor([math.ceil(len(windows) / micro)], device=env.device)
    if env.world > 1:
        dist.all_reduce(forwards, op=dist.ReduceOp.MAX)
    # loss sum, token count, UTF-8 bytes
    total = torch.zeros(3, dtype=torch.float64, device=env.device)
    for i in range(int(forwards.item())):
        chunk = windows[i * micro : (i + 1) * micro]
        padding = not chunk
        if padding:
            chunk = [np.zeros(cfg.model.seq_len + 1, dtype=np.int64)]
        batch = torch.from_numpy(np.stack(chunk)).to(env.device)
        with autocast(env.device):
            loss = runner(batch[:, :-1], batch[:, 1:])
        if not padding:
            n = batch[:, 1:].numel()
            total[0] += loss.double() * n
            total[1] += n
            total[2] += token_bytes[batch[:, 1:]].sum()
    if env.world > 1:
        dist.all_reduce(total)
    runner.train()
    loss = (total[0] / total[1]).item()
    bpb = (total[0] / (math.log(2) * total[2])).item() if total[2] else float("nan")
    return {"val_loss": loss, "val_bpb": bpb}


def validation_token_bytes(tokenizer: Path, manifest: Manifest, vocab: int) -> torch.Tensor:
    """The UTF-8 bytes each id stands for, over the model's (padded) vocabulary: the first
    `eval_tokens` of the split may be one domain's documents, whose bytes per token the
    split's average would misstate. A file that is no tokenizers JSON at all (the stub of
    tests' synthetic shards) gets the split's average for every id; a tokenizer Refinery
    refuses is refused here, as every later command would refuse the checkpoint."""
    from tokenizers import Tokenizer

    from refinery.tokenizer import load_tokenizer, token_byte_lengths

    try:
        Tokenizer.from_file(str(tokenizer))
    except Exception:  # tokenizers raises a bare Exception on what it cannot read
        lengths = None
    else:
        lengths = token_byte_lengths(load_tokenizer(tokenizer))
    table = torch.zeros(vocab, dtype=torch.float64)
    if lengths is not None:
        table[: len(lengths)] = torch.tensor(lengths, dtype=torch.float64)
    elif manifest.validation.tokens:
        table[:] = manifest.validation.bytes / manifest.validation.tokens
    return table


def autocast(device: torch.device):
    """bf16 autocast on GPU (weights and optimizer stay fp32); plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def count(n: float) -> str:
    """12,345,678 -> '12.3M': sizes at a glance, from a CPU test's thousands to billions."""
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= limit:
            return f"{n / limit:.3g}{suffix}"
    return f"{n:.3g}"


def describe(cfg: TrainConfig, model: Transformer, env: Distributed, accum: int, total: int) -> str:
    """The run in one line, printed before the first step: what a researcher checks before
    leaving a job alone (size, batch arithmetic, parallelism, precision, compilation). `total`
    is the tokens seen at max_steps (a resume's, at the batch it trained under so far)."""
    loop = cfg.train
    precision = "fp32"
    if env.device.type == "cuda":
        precision = f"bf16 autocast, {'bf16' if loop.autocast_residual else 'fp32'} residual"
    head = "head, stochastically rounded" if loop.float8_head_rounding == "stochastic" else "head"
    float8 = [name for name, on in (("blocks", loop.float8), (head, loop.float8_head)) if on]
    if float8:
        precision += f", float8 {' + '.join(float8)}"
    if loop.activation_checkpointing:
        precision += ", blocks recomputed in the backward"
    return (
        f"train: {count(model.num_params())} params, {count(model.flops_per_token())} FLOPs "
        f"per token; {loop.global_batch_tokens:,} tokens per step = {accum} x "
        f"{loop.micro_batch} x {cfg.model.seq_len} x {env.world} rank(s); "
        f"{cfg.max_steps:,} steps, {count(total)} tokens; {env.device.type}"
        f"{f' {loop.parallel}' if env.world > 1 else ''}, {precision}, "
        f"compile {loop.compile_mode if loop.compile else 'off'}; out {cfg.out}"
    )


def forward_backward(
    runner, model: Transformer, tokens: torch.Tensor, env: Distributed
) -> tuple[float, dict[str, float]]:
    """Accumulate gradients over the micro-batches in `tokens` (accum, micro, T+1); return
    the mean cross-entropy over micro-batches and ranks, and for a mixture of experts the
    means of its unweighted balancing loss and dropped share (router collapse shows there).
    DDP averages gradients once, on the last micro-batch (no_sync); FSDP reduce-scatters
    each micro-batch's."""
    accum = tokens.shape[0]
    moe = bool(model.cfg.moe.num_experts)
    sums = torch.zeros(3 if moe else 1, device=env.device)  # cross-entropy, balance, dropped
    no_sync = getattr(runner, "no_sync", None)
    for micro in range(accum):
        x, y = tokens[micro, :, :-1], tokens[micro, :, 1:]
        last = micro == accum - 1
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            with autocast(env.device):
                ce = runner(x, y)
            ((ce + model.aux_loss()) / accum).backward()
        sums[0] += ce.detach()
        if moe:
            balance, dropped = model.moe_stats()
            sums[1] += balance.detach()
            sums[2] += dropped
    if env.world > 1:
        dist.all_reduce(sums)
    means = (sums / accum / env.world).tolist()
    return means[0], {"moe_balance_loss": means[1], "moe_dropped": means[2]} if moe else {}


def clip_gradients(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip to `max_norm` (0: no clipping) and return the global norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):  # FSDP2 returns a DTensor
        norm = norm.full_tensor()
    return norm.item()


def run(
    cfg: TrainConfig,
    resume: bool = False,
    init_from: Path | None = None,
    weights_from: Path | None = None,
) -> Path:
    """Train per `cfg`; returns the out folder. When `out` has no checkpoint to resume, start
    from a checkpoint's weights and optimizer state (`init_from`: annealing), or from its
    weights alone with a new optimizer and schedule (`weights_from`: `train --from`)."""
    if not cfg.data or not cfg.out:
        raise ConfigError("data= (tokens folder) and out= (run folder) are required")
    if cfg.max_steps <= 0:
        raise ConfigError("max_steps must be positive")
    if cfg.train.profile_start > cfg.max_steps:
        raise ConfigError(
            f"train.profile_start={cfg.train.profile_start} is after max_steps={cfg.max_steps}: "
            "no step would be profiled"
        )
    env = setup_distributed(cfg.train.device)
    try:
        with contextlib.ExitStack() as held:
            return _train(cfg, env, resume, init_from, weights_from, held)
    finally:
        if env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    env: Distributed,
    resume: bool,
    init_from: Path | None,
    weights_from: Path | None,
    held: contextlib.ExitStack,
) -> Path:
    manifest = read_manifest(cfg.data)
    manifest.mixture(cfg.loader.mixture)  # named before OUT is locked and the model built
    source, start = None, init_from or weights_from
    if start is not None:  # before the vocabulary: another tokenizer is the cause to name
        check_same_tokenizer(start, manifest)
    resolve_vocab(cfg, manifest)
    global_windows, accum = batch_shape(cfg, env.world)
    tokenizer = verified_tokenizer(manifest)
    out = Path(cfg.out)
    weights_record = ckpt.source_record("weights_from", weights_from, out) if weights_from else {}
    ckpt.refuse_data_as_out(out, Path(local_path(cfg.data)))
    existing = ckpt.refuse_to_overwrite(out, resume, env.is_main)
    lock_out(out, env, held, existing)
    if existing:
        source = existing[-1][1]
        # not a post-training run's out; an anneal or a `train --from` run continues only
        # from its own --from
        given = (("init_from", init_from), ("weights_from", weights_from))
        meta = ckpt.check_continuation(source, "pretraining", {k: p for k, p in given if p})
        if weights_from is None:  # a resume that does not name it again keeps the record
            weights_record = {k: v for k, v in meta.items() if k.startswith("weights_from")}
        if init_from is None and meta.get("init_from"):
            places = ckpt.recorded_places(meta, "init_from", source.parent)
            began = next((place for place in places if place.exists()), places[-1])
            raise ckpt.CheckpointError(
                f"{out} holds an anneal of {began}: continue it with `refinery anneal --from` "
                "that checkpoint and --resume, or choose another out="
            )
        check_same_manifest(source, manifest, cfg.data)
        changed = settings_changed(source, cfg)
        ckpt.refuse_another_order(source, changed, ("seed",), "each bucket's shuffle")
        if changed and env.is_main:
            step = ckpt.load_meta(source)["step"]
            advice = PRETRAINING_ADVICE if init_from is None else ANNEAL_ADVICE
            say_changed_settings(changed, step, ckpt.load_config_dict(source), cfg, advice)
    elif start is not None:
        settings_changed(start, cfg)
    elif resume and env.is_main:
        print(ckpt.fresh_start_note(out), file=sys.stderr)

    torch.manual_seed(cfg.seed)
    with env.device:  # initialise in place: a 1B model is slow to init on CPU and copy
        model = Transformer(cfg.model)
    set_precision(model, cfg.train, env.device)
    runner = wrap_parallel(model, cfg, env)
    optimizer = build_optimizer(model, cfg, env.device)
    loader = TokenLoader(
        manifest,
        cfg.loader.mixture,
        cfg.model.seq_len,
        global_windows,
        accum,
        cfg.train.micro_batch,
        cfg.seed,
        env.rank,
        env.world,
    )
    cursor, start_step, history, skips, tokens_seen = loader.initial_cursor(), 0, [], 0, 0
    if source is not None:
        load_model_state(model, optimizer, source, with_optimizer=True)
        state = ckpt.load_torch(source, "state.pt")
        if ckpt.resume_step(state, source, cfg.max_steps, say=env.is_main) is None:
            return out
        cursor, start_step = state["loader"], state["step"]
        history, tokens_seen = state["spike_window"], state["tokens_seen"]
        skips = state.get("spike_skips_in_a_row", 0)  # absent in checkpoints before 2026-12-05
        torch.set_rng_state(state["rng_cpu"])
        if env.device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        if env.is_main:
            truncate_metrics(out / "metrics.jsonl", start_step)
            print(f"resuming from {source}: step {start_step}, {tokens_seen:,} tokens seen")
    else:
        if start is not None:
            load_model_state(model, optimizer, start, with_optimizer=init_from is not None)
            if (start / "state.pt").is_file():  # not an average of checkpoints: weights only
                cursor = continued_cursor(start, cfg, manifest, loader, say=env.is_main)
            if env.is_main:
                went_on = cursor != loader.initial_cursor()
                what = (
                    "weights and optimizer state"
                    if init_from
                    else "weights (a new optimizer, and the lr schedule from step 0)"
                )
                print(
                    f"starting from the {what} of {start}"
                    + (", reading on where its data stopped" if went_on else "")
                )
                note = read_out_note(start, cfg, manifest, loader, cursor)
                if note:
                    print(note, file=sys.stderr)
        if env.is_main:  # a fresh run: metrics of an earlier attempt without checkpoints go
            (out / "metrics.jsonl").unlink(missing_ok=True)

    val_windows = validation_windows(
        manifest, cfg.model.seq_len, cfg.train.eval_tokens, env.rank, env.world
    )
    # on every rank alike, whether its own share holds a window or not
    validates = validation_count(manifest, cfg.model.seq_len, cfg.train.eval_tokens) > 0
    # made validating or not: it refuses a tokenizer every later command would refuse
    val_bytes = validation_token_bytes(tokenizer, manifest, cfg.model.vocab_size).to(env.device)
    if env.is_main:
        notes = [
            *data_notes(cfg, manifest, loader),
            schedule_note(cfg.max_steps, cfg.schedule),
        ]
        for note in filter(None, notes):
            print(note, file=sys.stderr)
    flops_per_token = model.flops_per_token()
    log = MetricsLog(out, start_step, env.is_main, cfg.train.tensorboard)
    spike = cfg.train.spike
    guard = SpikeGuard(spike.window, spike.min_history, spike.zscore, history, skips)
    params = list(model.parameters())
    config_dict = dataclasses.asdict(cfg)
    buckets_read = bucket_sha256(manifest)

    def save(step: int, preemption: bool = False) -> None:
        weights = get_model_state_dict(model, options=FULL)
        optim_state = get_optimizer_state_dict(model, optimizer, options=FULL)
        if env.is_main:
            state = {
                "step": step,
                "loader": cursor,
                "scheduler": {"kind": cfg.schedule.kind, "last_lr": lr},
                "spike_window": list(guard.losses),
                "spike_skips_in_a_row": guard.skips_in_a_row,
                "tokens_seen": tokens_seen,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if env.device.type == "cuda" else None,
            }
            meta = {
                "manifest_fingerprint": manifest.fingerprint,
                "bucket_sha256": buckets_read,
                "tokenizer_sha256": manifest.tokenizer.sha256,
                "tokens_seen": tokens_seen,
                "world_size": env.world,
                **(
                    ckpt.source_record("init_from", init_from, out)
                    if init_from
                    else {"init_from": None}  # from scratch
                ),
                **weights_record,
            }
            if preemption:
                meta["preemption"] = True
            parts = (weights, optim_state, state, config_dict, meta, tokenizer)
            ckpt.save_checkpoint(out, step, *parts, keep_last=cfg.train.keep_last)
        if env.world > 1:
            dist.barrier()

    if env.is_main:
        total = tokens_seen + (cfg.max_steps - start_step) * cfg.train.global_batch_tokens
        print(describe(cfg, model, env, accum, total), flush=True)
    loader.start(cursor, cfg.loader.prefetch, pin_memory=env.device.type == "cuda")
    stop = StopRequest()
    profiler = StepProfiler(
        cfg.train.profile_start, cfg.train.profile_steps, out, env.rank, env.device.type == "cuda"
    )
    if profiler.missed(start_step) and env.is_main:
        print(
            f"train.profile_start={cfg.train.profile_start}: resumed at step {start_step}, "
            "past the profiled steps; nothing is profiled",
            file=sys.stderr,
        )
    show = env.is_main and cfg.train.progress
    progress = progress_bar(show, cfg.max_steps, start_step, "train")
    lr = lr_at(start_step, cfg.max_steps, cfg.optim.lr, cfg.schedule)
    tick = time.perf_counter()
    record, final, warned_past_cap = {}, False, False
    loop_stochastic = cfg.train.float8_head and cfg.train.float8_head_rounding == "stochastic"
    capped = set(loader.capped(cursor))  # buckets at their epoch cap: said when one joins
    try:
        for step in range(start_step, cfg.max_steps):
            profiler.begin(step + 1)
            lr = set_lr(optimizer, step, cfg.max_steps, cfg.optim.lr, cfg.schedule)
            wait_before = loader.wait_seconds
            batch = loader.next()
            tokens = batch.tokens.to(env.device, non_blocking=True)
            if loop_stochastic:
                torch.manual_seed(rounding_seed(cfg.seed, env.rank, step))
            loss, moe_figures = forward_backward(runner, model, tokens, env)
            grad_norm = clip_gradients(params, cfg.optim.grad_clip)
            done = step + 1
            newly_capped = [n for n in loader.capped(batch.cursor) if n not in capped]
            if newly_capped and not batch.past_cap and env.is_main:
                print(
                    f"step {done}: {newly_capped} read max_epochs={manifest.max_epochs:g} times; "
                    f"its weight goes to the other buckets of mixture {cfg.loader.mixture!r} "
                    "until they reach the cap too",
                    file=sys.stderr,
                )
            capped.update(newly_capped)
            if not warned_past_cap and batch.past_cap:
                warned_past_cap = True
                if env.is_main:
                    print(
                        f"step {done}: every bucket of mixture {cfg.loader.mixture!r} has been "
                        f"read max_epochs={manifest.max_epochs:g} times; sampling goes on past "
                        "that cap, repeating data (fewer steps or more data avoid it)",
                        file=sys.stderr,
                    )
            record = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm, **moe_figures}
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                log.write({**record, "stopped": "diverged"})  # the step that stopped it too
                raise TrainingDiverged(
                    f"step {done}: loss {loss}, grad norm {grad_norm}: training diverged; "
                    f"stopped without updating. {last_good(out)}"
                )
            skipped = guard.is_spike(loss)
            if skipped:
                optimizer.zero_grad(set_to_none=True)
                guard.skip()
                # >=: a resume may lower the limit below the count its checkpoint restored
                if 0 < spike.max_skips_in_a_row <= guard.skips_in_a_row:
                    log.write({**record, "skipped_spike": True, "stopped": "spikes"})
                    raise TrainingDiverged(
                        f"step {done}: {guard.skips_in_a_row} updates in a row skipped as loss "
                        f"spikes (loss {loss:.4g}, recent accepted mean {guard.mean():.4g}): the "
                        f"loss has moved to a new level; stopped. {last_good(out)}"
                    )
            else:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                guard.accept(loss)
            cursor = batch.cursor
            tokens_seen += cfg.train.global_batch_tokens

            if skipped:
                record["skipped_spike"] = True
            if profiler.profiling:
                record["profiled"] = True
            now = time.perf_counter()
            elapsed, tick = now - tick, now
            tokens_per_s = cfg.train.global_batch_tokens / elapsed
            record.update(
                tokens=tokens_seen,
                tokens_per_s=tokens_per_s,
                mfu=flops_per_token * tokens_per_s / env.world / (cfg.train.peak_tflops * 1e12),
                data_wait=(loader.wait_seconds - wait_before) / elapsed,
                step_seconds=elapsed,
            )
            if env.device.type == "cuda":
                record["peak_mem_gib"] = torch.cuda.max_memory_allocated(env.device) / 2**30
            final = done == cfg.max_steps
            every = cfg.train.eval_every
            if validates and (final or (every and done % every == 0)):
                record.update(evaluate(runner, val_windows, cfg, env, val_bytes))
            log.write(record)  # before the checkpoint: a resumed run never misses a line
            profiler.end(done)
            scheduled = cfg.ckpt_every and done % cfg.ckpt_every == 0
            if stop.save_or_stop(env, done, scheduled or (final and cfg.train.save_final), save):
                break
            progress.update(1)
            # a dict keeps this order (tqdm sorts keyword arguments); MFU against a GPU's
            # peak means nothing on a CPU
            postfix = {"loss": f"{loss:.4f}", "lr": f"{lr:.2e}", "tok/s": f"{tokens_per_s:,.0f}"}
            if env.device.type == "cuda":
                postfix["mfu"] = f"{100 * record['mfu']:.1f}%"
            progress.set_postfix(postfix)
            tick = time.perf_counter()  # checkpoint and eval time are not step time
    finally:
        profiler.close()
        stop.restore()
        loader.close()
        progress.close()
        log.close()
    if env.is_main and final:
        print(finished(record, out), flush=True)
    return out


def finished(record: dict, out: Path) -> str:
    """The last step's line: its loss, the validation figures if it ran them, the checkpoint."""
    line = f"train: step {record['step']} done, loss {record['loss']:.4f}"
    if "val_loss" in record:
        line += f", validation loss {record['val_loss']:.4f} ({record['val_bpb']:.3f} bits/byte)"
    found = ckpt.list_checkpoints(out)
    return line + (f"; newest checkpoint {found[-1][1]}" if found else "; no checkpoint saved")


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, values: dict | None = None, **more) -> None: ...
    def close(self) -> None: ...


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    """tqdm when `enabled` (rank 0; imported only then, so a bare torch install can run
    benchmarks), else a bar that does nothing."""
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)


def parse_args(argv: list[str], prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[0],
        epilog="data= (tokens folder) and out= (run folder) are required; every key and "
        "preset is in docs/TRAINING.md. Example: refinery train --config conf/train/tiny.yaml "
        "data=runs/demo/tokens out=runs/tiny max_steps=200",
    )
    parser.add_argument(
        "--config",
        action=GivenOnce,
        help="YAML config (conf/train/*.yaml); without it, the defaults of training/config.py",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="CKPT",
        help="run folder or ckpt-<step> whose weights this run starts from (its model; a new "
        "optimizer and lr schedule)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from out's newest ckpt")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    return parser.parse_intermixed_args(argv)


def weights_from_config(source: Path, path: str | None, overrides: list[str]) -> TrainConfig:
    """`refinery train --from CKPT`'s config: the command's own (defaults, --config, overrides)
    with the model of `source`, whose weights fix its shape. A model.* setting the command
    gives otherwise is refused; MoE's training settings, which shape no weight, are taken."""
    meta = ckpt.load_meta(source)
    if meta.get("method", "pretraining") != "pretraining":
        raise ckpt.CheckpointError(
            f"{source} is a {meta['method']} checkpoint: train --from starts from a pretraining "
            "or anneal checkpoint's weights"
        )
    cfg = load_config(TrainConfig, path, overrides)
    layer = read_yaml(resolve_path(path)) if path else {}
    given = ckpt.flat_settings(apply_overrides(TrainConfig, layer, overrides).get("model") or {})
    model = dataclasses.asdict(from_dict(ModelConfig, ckpt.load_config_dict(source)["model"]))
    theirs, mine = ckpt.flat_settings(model), ckpt.flat_settings(dataclasses.asdict(cfg.model))
    given = {key: value for key, value in given.items() if key in mine}  # not `moe: null`
    clash = [
        f"model.{key}: {theirs[key]} there, {mine[key]} here"
        for key in sorted(given)
        if mine[key] != theirs[key]
        and f"model.{key}" not in TRAINING_ONLY_MODEL_KEYS
        and not (key == "vocab_size" and mine[key] == 0)  # 0: the tokenizer's, checked apart
    ]
    if clash:
        raise ConfigError(
            f"{source} holds another model than this command gives ({'; '.join(clash)}): its "
            "weights fix the model; drop those model.* settings"
        )
    for key in given:
        if f"model.{key}" in TRAINING_ONLY_MODEL_KEYS:
            set_dotted(model, key.split("."), mine[key])
    cfg.model = from_dict(ModelConfig, model, "model.")
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, "refinery train")
    source = ckpt.resolve_checkpoint(args.source) if args.source else None
    if source is not None:
        cfg = weights_from_config(source, args.config, args.overrides)
        if cfg.out:
            ckpt.refuse_source_as_out(Path(cfg.out), source)
    else:
        cfg = load_config(TrainConfig, args.config, args.overrides)
        found = ckpt.list_checkpoints(cfg.out) if args.resume and cfg.out else []
        if found and ckpt.load_meta(found[-1][1]).get("weights_from"):
            # a `train --from` run resumed without it: its model is its own checkpoint's
            cfg = weights_from_config(found[-1][1], args.config, args.overrides)
    if set_sections(cfg, ("anneal",)):
        print(
            "train: the anneal.* settings are ignored: `refinery anneal --from RUN` reads them",
            file=sys.stderr,
        )
    run(cfg, resume=args.resume, weights_from=source)
    return 0


def console(entry) -> int:
    """`python -m training.X` (torchrun) with the same error handling as `refinery X`; a
    second Ctrl-C, which stops at once, is one line from each node, not a traceback a rank."""
    from refinery.cli import COMMANDS, stopped_by_ctrl_c

    try:
        return with_user_errors(entry)
    except KeyboardInterrupt:
        module = entry.__module__
        if module == "__main__":  # python -m training.X
            module = getattr(sys.modules["__main__"].__spec__, "name", module)
        name = next((c for c, (m, _) in COMMANDS.items() if m == module), "")
        if first_on_node():
            print(f"\n{stopped_by_ctrl_c(name, name)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(console(main))
