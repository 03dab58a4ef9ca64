"""The post-training loop shared by `refinery sft`, `rm` and `dpo`.

Each command is an `Objective` (how records become token sequences, and the loss of a batch);
this module does the rest: load `--from` with `load_pretrained`, hold out a share of the data,
batch, optimise with the pretraining trainer's pieces (AdamW groups, LR schedule, clipping,
autocast, metrics.jsonl, atomic checkpoints), and log held-out figures.

Batching: one conversation (or answer) per row, no packing across conversations, so no token
attends to another conversation and positions restart at 0 on every row. The model's attention
stays the causal SDPA kernel (flash on GPU) instead of a materialised block-diagonal mask.
Padding is kept small by sorting each optimizer step's sequences by length before cutting
micro-batches (HF `group_by_length`). The loss is a sum over supervised tokens (SFT) or pairs
(RM, DPO) divided by their count in the whole global batch, all micro-batches and ranks.

The optimizer step's examples are a pure function of (seed, step): successive slices of a seeded
permutation per epoch, so `--resume` continues the exact sequence of batches.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

from refinery.cli import GivenOnce
from refinery.config import (
    ConfigError,
    check_ranges,
    check_seed,
    load_config,
    resolve_path,
    set_sections,
    user_path,
)
from refinery.manifest import sha256_file
from refinery.tokenizer import PAD_ID, encode_chat
from training import checkpoint as ckpt
from training.chat_data import Conversation, read_preferences
from training.config import OptimConfig, ScheduleConfig
from training.model import make_dropless
from training.pretrained import Pretrained, load_pretrained
from training.schedule import set_lr
from training.train import (
    FULL,
    Distributed,
    MetricsLog,
    StopRequest,
    TrainingDiverged,
    autocast,
    build_optimizer,
    clip_gradients,
    load_model_state,
    lock_out,
    progress_bar,
    say_changed_settings,
    setup_distributed,
    truncate_metrics,
)

# The chat template of refinery.tokenizer.encode_chat; recorded in every post-trained checkpoint.
CHAT_TEMPLATE = "refinery-chat-v1"


@dataclass
class SFTConfig:
    supervise: Literal["all", "last"] = "all"  # assistant turns in the loss: every one, or last


@dataclass
class RMConfig:
    margin: float = 0.0  # Bradley–Terry margin: r_chosen must beat r_rejected by this much


@dataclass
class DPOConfig:
    beta: float = 0.1  # Rafailov et al. 2023; strength of the implicit KL to the reference

    def __post_init__(self) -> None:
        check_ranges("dpo", self, {"beta": "> 0"})


@dataclass
class PostTrainConfig:
    data: str = ""  # chat/preference file (JSON array, JSONL, .jsonl.gz; see chat_data.py)
    out: str = ""  # run folder: metrics.jsonl, ckpt-<step>/
    max_steps: int = 100
    seed: int = 0
    ckpt_every: int = 0  # 0: only the final checkpoint
    batch_size: int = 16  # sequences (SFT) or pairs (RM, DPO) per optimizer step, all ranks
    micro_batch: int = 8  # per forward pass and rank
    heldout: float = 0.1  # share of the examples kept out of training for the val_ figures
    eval_every: int = 0  # steps between held-out evaluations; 0: only at the end
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # each block recomputed in the backward (train.activation_checkpointing; TRL's
    # gradient_checkpointing): long conversations on a large model in less memory
    activation_checkpointing: bool = False
    keep_last: int = 1  # checkpoints kept in `out`; 0 keeps all
    progress: bool = True
    tensorboard: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rm: RMConfig = field(default_factory=RMConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)

    def __post_init__(self) -> None:
        self.data, self.out = user_path(self.data), user_path(self.out)
        check_seed("seed", self.seed, bits=64)
        rules = {"ckpt_every": ">= 0", "batch_size": "> 0", "micro_batch": "> 0"}
        check_ranges("", self, rules | {"eval_every": ">= 0", "keep_last": ">= 0"})


# ---------------------------------------------------------------- examples and batches


@dataclass
class Example:
    tokens: list[int]
    mask: list[int]  # 1 on tokens the loss supervises (assistant content and end-of-turn)


@dataclass
class PairExample:
    chosen: Example  # mask: the chosen answer's tokens
    rejected: Example
    reference: tuple[float, float] = (0.0, 0.0)  # DPO: reference log-probs of the two answers


@dataclass
class SequenceBatch:
    tokens: torch.Tensor  # (B, T) right-padded with PAD
    mask: torch.Tensor  # (B, T)


@dataclass
class PairBatch:
    tokens: torch.Tensor  # (2B, T): the B chosen rows, then the B rejected rows
    mask: torch.Tensor
    reference: torch.Tensor  # (2B,) reference log-probs in the same order


def encode_supervised(
    tokenizer, conversation: Conversation, supervise: str = "all"
) -> tuple[list[int], list[int]]:
    """Chat-template token ids and the mask of the assistant turns to learn: all of them, or
    the last, leaving out any of weight 0 (OpenAI's fine-tuning format).

    The template is concatenative (BOS, then each message alone), so a message's tokens follow
    the previous one's: of an assistant turn, the role token is given, the content and the
    end-of-turn are learnt (so generation learns to stop). Each message is encoded once more
    to find its length, not the conversation up to each turn (quadratic in turns: a 200-turn
    conversation took 20 s).
    """
    ids = encode_chat(tokenizer, conversation)
    mask = [0] * len(ids)
    turns = [
        i for i, m in enumerate(conversation) if m["role"] == "assistant" and m.get("weight") != 0
    ]
    learnt = set(turns if supervise == "all" else turns[-1:])
    end = 1  # after BOS
    for i, message in enumerate(conversation):
        start, end = end + 1, end + len(encode_chat(tokenizer, [message])) - 1
        if i in learnt:
            mask[start:end] = [1] * (end - start)
    return ids, mask


def pad_rows(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def token_logprobs(runner, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens[:, t] | tokens[:, :t]) for t >= 1: shape (B, T - 1), float32."""
    logits = runner(tokens[:, :-1]).float()
    return -F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The examples of optimizer step `step` (0-based): consecutive slices of a seeded
    permutation per epoch, so any step's batch is known without replaying earlier ones."""
    chosen: list[int] = []
    while len(chosen) < batch_size:
        epoch, offset = divmod(step * batch_size + len(chosen), n)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        chosen += order[offset : offset + batch_size - len(chosen)].tolist()
    return chosen


def split_heldout(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out) by a seeded shuffle; at least one of each when there are two."""
    order = np.random.default_rng(seed).permutation(len(examples))
    count = min(len(examples) - 1, max(1, round(fraction * len(examples)))) if fraction else 0
    held = sorted(order[:count].tolist())
    keep = sorted(order[count:].tolist())
    return [examples[i] for i in keep], [examples[i] for i in held]


def micro_batches(examples: list, length, micro: int) -> list[list]:
    """Sort by length (longest first), then cut into micro-batches: little padding per row."""
    ordered = sorted(examples, key=length, reverse=True)
    return [ordered[i : i + micro] for i in range(0, len(ordered), micro)]


def pair_figures(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Sums over pairs: correct ranking, reward margin and the two rewards."""
    return {
        "accuracy": (chosen > rejected).sum().item(),
        "margin": (chosen - rejected).sum().item(),
        "chosen_reward": chosen.sum().item(),
        "rejected_reward": rejected.sum().item(),
    }


# ---------------------------------------------------------------- objectives


class Objective(ABC):
    """What a post-training method decides; the loop in `run` does everything else."""

    name = ""
    figure_names: tuple[str, ...] = ()  # the keys of the figures `loss` returns
    reads_source_on_resume = False  # DPO: its reference is the source's weights

    def __init__(self, cfg: PostTrainConfig):
        self.cfg = cfg
        self.truncated = 0  # examples kept but cut to the model's context
        self.last_answer_cut = 0  # of those, kept for earlier turns, the last answer cut away

    def build(self, pretrained: Pretrained) -> torch.nn.Module:
        """The module to train (its state dict is the checkpoint's model.safetensors)."""
        return pretrained.model

    @abstractmethod
    def examples(self, path: Path, tokenizer, max_tokens: int, skipped: Counter) -> list:
        """The training examples of the data file, encoded; records left out are counted."""

    def prepare(self, module, examples: list, device: torch.device) -> None:  # noqa: B027
        """Work before the first update (DPO: the reference log-probs); none by default."""

    @abstractmethod
    def weight(self, example) -> int:
        """The example's share of the loss normaliser (supervised tokens, or 1 per pair)."""

    @abstractmethod
    def length(self, example) -> int:
        """Tokens of the example: micro-batches are cut from length-sorted examples."""

    @abstractmethod
    def collate(self, examples: list, device: torch.device):
        """Padded tensors of a micro-batch of examples, on `device`."""

    @abstractmethod
    def loss(self, runner, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """(sum of the loss over the batch's weight units, figures summed over the batch)."""

    def report(self, sums: dict[str, float], weight: float) -> dict[str, float]:
        """Per-step figures from sums over the global batch."""
        return {key: value / weight for key, value in sums.items()}


class PairObjective(Objective):
    """Preference pairs: each answer is a sequence `prompt + answer` masked on the answer."""

    figure_names = ("accuracy", "margin", "chosen_reward", "rejected_reward")

    def examples(self, path: Path, tokenizer, max_tokens: int, skipped: Counter) -> list:
        pairs = []
        for preference in read_preferences(path, skipped):
            sides = [
                encode_supervised(
                    tokenizer,
                    [*preference.prompt, {"role": "assistant", "content": answer}],
                    "last",
                )
                for answer in (preference.chosen, preference.rejected)
            ]
            fitted = fit_pair(sides, max_tokens)
            if fitted is None:
                skipped["answer longer than the context"] += 1
                continue
            self.truncated += max(len(tokens) for tokens, _ in sides) > max_tokens
            pairs.append(PairExample(*fitted))
        return pairs

    def weight(self, example: PairExample) -> int:
        return 1

    def length(self, example: PairExample) -> int:
        return max(len(example.chosen.tokens), len(example.rejected.tokens))

    def collate(self, examples: list[PairExample], device: torch.device) -> PairBatch:
        rows = [e.chosen for e in examples] + [e.rejected for e in examples]
        reference = [e.reference[0] for e in examples] + [e.reference[1] for e in examples]
        return PairBatch(
            pad_rows([r.tokens for r in rows], PAD_ID).to(device),
            pad_rows([r.mask for r in rows], 0).to(device),
            torch.tensor(reference, dtype=torch.float32, device=device),
        )


def fit_pair(
    sides: list[tuple[list[int], list[int]]], max_tokens: int
) -> tuple[Example, Example] | None:
    """Both sides of a pair (tokens, mask) within `max_tokens`: the prompt loses its start, by
    as much as the longer side needs and the same on both, so the two answers are compared
    under one prompt (TRL cuts the prompt once for both, by the longer answer). None when
    the longer answer itself, with the token before it, does not fit."""
    cut = max(0, max(len(tokens) for tokens, _ in sides) - max_tokens)
    if any(sum(mask[: cut + 1]) for _, mask in sides):
        return None
    chosen, rejected = (Example(tokens[cut:], mask[cut:]) for tokens, mask in sides)
    return chosen, rejected


# ---------------------------------------------------------------- the loop


def check_config(cfg: PostTrainConfig, world: int) -> None:
    if not cfg.data or not cfg.out:
        raise ConfigError("data= (chat or preference file) and out= (run folder) are required")
    if cfg.max_steps <= 0:
        raise ConfigError("max_steps must be positive")
    if not 0 <= cfg.heldout < 1:
        raise ConfigError(f"heldout must be in [0, 1), got {cfg.heldout}")
    if cfg.batch_size % (cfg.micro_batch * world):
        raise ConfigError(
            f"batch_size {cfg.batch_size} must be a multiple of micro_batch * world = "
            f"{cfg.micro_batch * world}"
        )


def run(
    objective_class: type[Objective], cfg: PostTrainConfig, source: str, resume: bool = False
) -> Path:
    """Post-train the checkpoint `source` per `cfg`; returns the out folder."""
    env = setup_distributed(cfg.device)
    try:
        check_config(cfg, env.world)
        with contextlib.ExitStack() as held:
            return _run(objective_class(cfg), cfg, source, resume, env, held)
    finally:
        if env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


# what to do instead of warming a post-trained model back up (anneal continues pretraining)
POSTTRAIN_ADVICE = (
    "To go on from where it stopped at its own rate, start a new run --from its checkpoint"
)


def _run(
    objective: Objective,
    cfg: PostTrainConfig,
    source: str,
    resume: bool,
    env: Distributed,
    held: contextlib.ExitStack,
) -> Path:
    out = Path(cfg.out)
    ckpt.refuse_source_as_out(out, ckpt.resolve_checkpoint(source))
    existing = ckpt.refuse_to_overwrite(out, resume, env.is_main)
    if resume and existing:
        last = existing[-1][1]
        sources = {"source": ckpt.resolve_checkpoint(source)}
        meta_then = ckpt.check_continuation(last, objective.name, sources)
        ckpt.check_same_data(meta_then, last, resolve_path(cfg.data))
        changed = ckpt.changed_settings(meta_then.get("posttrain", {}), cfg)
        what = "the held-out split and the batches"  # a step's batch: step × batch_size on
        ckpt.refuse_another_order(last, changed, ("seed", "heldout", "batch_size"), what)
        if env.is_main:
            then = meta_then.get("posttrain", {})
            say_changed_settings(changed, meta_then["step"], then, cfg, POSTTRAIN_ADVICE)
        state = ckpt.load_torch(last, "state.pt")
        if ckpt.resume_step(state, last, cfg.max_steps, say=env.is_main) is None:
            return out
    torch.manual_seed(cfg.seed)
    pretrained = load_pretrained(source, env.device, accept_reward_model=objective.name == "rm")
    tokenizer = pretrained.tokenizer()
    module = objective.build(pretrained)
    make_dropless(module)
    module.checkpoint_blocks = cfg.activation_checkpointing
    skipped: Counter = Counter()
    data = resolve_path(cfg.data)
    examples = objective.examples(data, tokenizer, pretrained.config.model.seq_len, skipped)
    train, heldout = split_heldout(examples, cfg.heldout, cfg.seed)
    if not train and not examples and not skipped:
        raise ConfigError(f"{data}: no records in the file")
    if not train:
        raise ConfigError(f"{data}: no usable {objective.name} examples (skipped: {dict(skipped)})")
    objective.prepare(module, train + heldout, env.device)

    runner = module
    if env.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.local_rank] if env.device.type == "cuda" else None
        runner = DistributedDataParallel(module, device_ids=ids)  # idle experts run on 0 rows
    meta = {
        "tokenizer_sha256": ckpt.load_meta(pretrained.path).get("tokenizer_sha256"),
        "method": objective.name,
        **ckpt.source_record("source", pretrained.path, out, objective.reads_source_on_resume),
        "chat_template": CHAT_TEMPLATE,
        "data": str(data),
        "data_sha256": sha256_file(data),
        "examples": {"train": len(train), "heldout": len(heldout)},
        "skipped": dict(skipped),
        "truncated": objective.truncated,
        "last_answer_cut": objective.last_answer_cut,
        "posttrain": dataclasses.asdict(cfg),
    }

    optimizer = build_optimizer(module, cfg, env.device)
    start_step = 0
    lock_out(out, env, held, existing)
    if resume and existing:
        load_model_state(module, optimizer, last, with_optimizer=True)
        start_step = state["step"]
        if env.is_main:
            truncate_metrics(out / "metrics.jsonl", start_step)
            print(f"resuming from {last}: step {start_step}", file=sys.stderr)
    elif env.is_main:
        if resume:
            print(ckpt.fresh_start_note(out), file=sys.stderr)
        (out / "metrics.jsonl").unlink(missing_ok=True)
    if env.is_main:
        print(describe_data(objective, data, train, heldout, skipped), file=sys.stderr)
        seq_len = pretrained.config.model.seq_len
        for warning in data_warnings(len(train), len(heldout), skipped, cfg.batch_size, seq_len):
            print(f"warning: {data}: {warning}", file=sys.stderr)

    def save(step: int, preemption: bool = False) -> None:
        weights = get_model_state_dict(module, options=FULL)
        optim_state = get_optimizer_state_dict(module, optimizer, options=FULL)
        if env.is_main:
            state = {"step": step}  # batches are a function of (seed, step): nothing else
            config = dataclasses.asdict(pretrained.config)  # the architecture load_pretrained reads
            written = {**meta, "preemption": True} if preemption else meta
            parts = (weights, optim_state, state, config, written, pretrained.tokenizer_path)
            ckpt.save_checkpoint(out, step, *parts, keep_last=cfg.keep_last)
        if env.world > 1:
            dist.barrier()

    log = MetricsLog(out, start_step, env.is_main, cfg.tensorboard)
    params = list(module.parameters())
    progress = progress_bar(env.is_main and cfg.progress, cfg.max_steps, start_step, objective.name)
    stop = StopRequest()  # SIGTERM or a first Ctrl-C: a checkpoint after the step, as pretraining
    try:
        for step in range(start_step, cfg.max_steps):
            tick = time.perf_counter()
            lr = set_lr(optimizer, step, cfg.max_steps, cfg.optim.lr, cfg.schedule)
            batch = [train[i] for i in batch_indices(len(train), cfg.batch_size, step, cfg.seed)]
            figures = train_step(objective, runner, module, batch, env)
            grad_norm = clip_gradients(params, cfg.optim.grad_clip)
            done = step + 1
            if not (math.isfinite(figures["loss"]) and math.isfinite(grad_norm)):
                raise TrainingDiverged(
                    f"step {done}: loss {figures['loss']}, grad norm {grad_norm}: diverged; "
                    "stopped without updating"
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            record = {"step": done, **figures, "lr": lr, "grad_norm": grad_norm}
            record["step_seconds"] = time.perf_counter() - tick
            final = done == cfg.max_steps
            if heldout and (final or (cfg.eval_every and done % cfg.eval_every == 0)):
                held = evaluate(objective, module, heldout, cfg.micro_batch, env)
                record.update({f"val_{key}": value for key, value in held.items()})
            log.write(record)
            on_schedule = final or (cfg.ckpt_every and done % cfg.ckpt_every == 0)
            if stop.save_or_stop(env, done, on_schedule, save):
                break
            progress.update(1)
            progress.set_postfix(loss=f"{figures['loss']:.4f}")
    finally:
        stop.restore()
        progress.close()
        log.close()
    return out


def describe_data(objective: Objective, data: Path, train: list, heldout: list, skipped) -> str:
    line = f"{objective.name}: {data}: {len(train)} train, {len(heldout)} held-out examples"
    if objective.truncated:
        line += f"; {objective.truncated} truncated to the context"
    if objective.last_answer_cut:  # a preference file's chosen answer: the point of the record
        line += (
            f" ({objective.last_answer_cut} of them lost their last answer whole and train on "
            "earlier turns only; sft.supervise=last skips such examples)"
        )
    return line + skip_counts(skipped)


def skip_counts(skipped: Counter) -> str:
    """`; skipped N (reason: n, ...)`, or nothing when no record was skipped."""
    if not skipped:
        return ""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
    return f"; skipped {sum(skipped.values())} ({reasons})"


def data_warnings(
    train: int, heldout: int, skipped: Counter, batch_size: int, room: int
) -> list[str]:
    """What makes a post-training run train on far less than its file: most records skipped
    (typically answers longer than the context), or fewer examples than one batch."""
    warnings = []
    lost, used = sum(skipped.values()), train + heldout
    if lost > used:
        reason, count = skipped.most_common(1)[0]
        line = f"{lost} of {lost + used} records skipped, {count} of them for {reason!r}"
        if "context" in reason:
            line += f" (at most {room} tokens fit; a model with a longer seq_len keeps more)"
        warnings.append(line)
    if 0 < train < batch_size:
        warnings.append(
            f"{train} train examples, fewer than batch_size={batch_size}: every step repeats them"
        )
    return warnings


def train_step(objective: Objective, runner, module, batch: list, env: Distributed) -> dict:
    """Accumulate gradients over this rank's micro-batches of the global `batch`; the loss is
    divided by the weight of the whole global batch (supervised tokens or pairs, all ranks).
    DDP averages gradients over ranks, hence the factor `world`."""
    chunks = micro_batches(batch, objective.length, objective.cfg.micro_batch)[
        env.rank :: env.world
    ]
    total_weight = float(sum(objective.weight(e) for e in batch))
    sums: Counter = Counter()
    no_sync = getattr(runner, "no_sync", None)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            with autocast(env.device):
                loss_sum, figures = objective.loss(runner, objective.collate(chunk, env.device))
            aux = module.aux_loss() / len(chunks)  # MoE load balancing, as in pretraining
            (loss_sum * env.world / total_weight + aux).backward()
        sums["loss"] += loss_sum.item()
        sums.update(figures)
    return objective.report(all_reduce_sums(sums, objective.figure_names, env), total_weight)


@torch.no_grad()
def evaluate(objective: Objective, module, examples: list, micro: int, env: Distributed) -> dict:
    """The objective's figures over all held-out examples (each rank takes every world-th
    micro-batch; the bare module, as ranks may run different numbers of forwards)."""
    module.eval()
    sums: Counter = Counter()
    for chunk in micro_batches(examples, objective.length, micro)[env.rank :: env.world]:
        with autocast(env.device):
            loss_sum, figures = objective.loss(module, objective.collate(chunk, env.device))
        sums["loss"] += loss_sum.item()
        sums.update(figures)
    module.train()
    weight = float(sum(objective.weight(e) for e in examples))
    return objective.report(all_reduce_sums(sums, objective.figure_names, env), weight)


def all_reduce_sums(sums: Counter, names: tuple[str, ...], env: Distributed) -> dict:
    """Sums of `loss` and the figures `names` over ranks (zeros from a rank without data)."""
    keys = ["loss", *names]
    if env.world == 1:
        return {key: float(sums[key]) for key in keys}
    values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist(), strict=True))


def main(objective_class: type[Objective], argv: list[str] | None, doc: str) -> int:
    """`refinery <sft|rm|dpo> [--config FILE] --from CKPT [key=value ...] [--resume]`."""
    name = objective_class.name
    parser = argparse.ArgumentParser(prog=f"refinery {name}", description=doc.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="run folder or ckpt-<step>")
    parser.add_argument(
        "--config",
        action=GivenOnce,
        default=str(resolve_path(f"conf/posttrain/{name}.yaml")),
        help=f"YAML config (default conf/posttrain/{name}.yaml)",
    )
    parser.add_argument("--resume", action="store_true", help="continue out's newest checkpoint")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(PostTrainConfig, args.config, args.overrides)
    others = tuple(section for section in ("sft", "rm", "dpo") if section != name)
    for section in set_sections(cfg, others):
        print(
            f"{name}: the {section}.* settings are ignored: `refinery {section}` reads them",
            file=sys.stderr,
        )
    run(objective_class, cfg, args.source, resume=args.resume)
    return 0
