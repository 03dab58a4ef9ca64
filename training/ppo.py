"""RLHF with PPO: `refinery ppo --from SFT_CKPT reward=RM_CKPT data=PROMPTS out=DIR max_steps=N`.

One step (Ouyang et al. 2022, InstructGPT; the loss details follow TRL's PPO trainer):

1. rollout: sample one answer per prompt from the policy with `training.generate`;
2. score: the reward model's score at the answer's last token, minus a per-token KL penalty
   `kl_coef * (log π − log π_ref)` to the frozen reference (the SFT model), so the policy gains
   reward without drifting into text the reward model was never trained on;
3. advantages: GAE (γ = 1, λ = 0.95) on the value estimates, whitened over the batch;
4. update: `ppo_epochs` passes over the rollouts in shuffled mini-batches with the clipped
   surrogate (ε = 0.2) and the clipped value loss.

The value function is a scalar head on the policy's own final hidden states (a shared trunk, as
TRL's `AutoModelForCausalLMWithValueHead`; InstructGPT trains a separate value model initialised
from the reward model, which doubles the memory). Its weights are saved as `value_head.*` next
to the policy's in each checkpoint, which `load_pretrained` opens as a plain language model.

The core (`rollout`, `gae`, `ppo_update`) takes the reward as a function of the sampled tokens,
`reward_fn(prompts, responses) -> (B,) tensor`; a reward model is one such function.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

from refinery.cli import GivenOnce
from refinery.config import (
    ConfigError,
    check_ranges,
    check_seed,
    load_config,
    resolve_path,
    user_path,
)
from refinery.manifest import sha256_file
from refinery.tokenizer import END_OF_TURN, SPECIAL_TOKENS, encode_chat
from training import checkpoint as ckpt
from training.chat_data import read_prompts
from training.config import ModelConfig, OptimConfig, ScheduleConfig
from training.generate import GenerationError, generate
from training.model import Transformer, make_dropless
from training.posttrain import (
    CHAT_TEMPLATE,
    PAD_ID,
    batch_indices,
    data_warnings,
    skip_counts,
)
from training.pretrained import Pretrained, load_pretrained
from training.reward import load_reward_model
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
    console,
    load_model_state,
    progress_bar,
    say_changed_settings,
    setup_distributed,
    truncate_metrics,
)

RewardFn = Callable[[list[list[int]], list[list[int]]], torch.Tensor]


END_OF_TURN_ID = SPECIAL_TOKENS.index(END_OF_TURN)  # ids 0..6 are fixed (refinery/tokenizer.py)


@dataclass
class PPOHyper:
    kl_coef: float = 0.05  # per-token KL penalty to the reference (issue 8; InstructGPT β ~ 0.02)
    gamma: float = 1.0  # no discount within an answer (InstructGPT, TRL)
    lam: float = 0.95  # GAE λ (TRL default)
    clip: float = 0.2  # policy ratio clip ε (Schulman et al. 2017)
    clip_value: float = 0.2  # value prediction clip around the rollout's values (TRL)
    value_coef: float = 0.1  # weight of the value loss in the shared-trunk loss (TRL vf_coef)
    whiten_rewards: bool = True  # per-token rewards to unit std per batch (TRL option; issue 8)
    # Subtracted from the score of an answer that does not end its turn (cut at max_new_tokens,
    # or ended with <|end_of_text|>): the reward model only ever scored answers that end in
    # <|end_of_turn|> (TRL's missing_eos_penalty); 0 is off.
    missing_eos_penalty: float = 0.0
    ppo_epochs: int = 4  # passes over each batch of rollouts (InstructGPT, TRL)
    mini_batch: int = 8  # rollouts per optimizer update
    max_new_tokens: int = 24  # answers are scored where they stop or at this cut
    temperature: float = 1.0  # rollout sampling temperature; log-probs use the same

    def __post_init__(self) -> None:
        rules = {"kl_coef": ">= 0", "gamma": "in [0, 1]", "lam": "in [0, 1]", "clip": "> 0"}
        rules |= {"clip_value": "> 0", "value_coef": ">= 0", "ppo_epochs": "> 0"}
        rules |= {"mini_batch": "> 0", "max_new_tokens": "> 0", "temperature": "> 0"}
        rules |= {"missing_eos_penalty": ">= 0"}
        check_ranges("ppo", self, rules)
        if self.temperature < MIN_TEMPERATURE:  # the log-probs divide float32 logits by it
            raise ConfigError(
                f"ppo.temperature must be >= {MIN_TEMPERATURE:g} (the log-probs divide the "
                f"logits by it, in float32), got {self.temperature}"
            )


# Where `rollout`'s logits / temperature stay finite in float32 (1e-40 made them inf, NaN)
MIN_TEMPERATURE = 1e-6

# What a resume that lengthens the schedule may do instead: a new run's reference is its
# --from checkpoint, so the KL anchor moves too.
PPO_ADVICE = (
    "To go on from where it stopped at its own rate, start a new run --from its checkpoint: "
    "that checkpoint, not this run's --from model, is then the reference the KL penalty "
    "holds it to"
)


@dataclass
class PPOConfig:
    data: str = ""  # prompts: any chat/preference layout (training/chat_data.py)
    reward: str = ""  # reward model checkpoint written by `refinery rm`
    out: str = ""  # run folder: metrics.jsonl, ckpt-<step>/
    max_steps: int = 100  # rollout batches
    seed: int = 0
    ckpt_every: int = 0  # 0: only the final checkpoint
    batch_size: int = 16  # prompts per rollout batch
    device: Literal["auto", "cpu", "cuda"] = "auto"
    keep_last: int = 1
    progress: bool = True
    tensorboard: bool = False
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5, weight_decay=0.0))
    schedule: ScheduleConfig = field(
        default_factory=lambda: ScheduleConfig(kind="constant", warmup_steps=0)
    )
    ppo: PPOHyper = field(default_factory=PPOHyper)

    def __post_init__(self) -> None:
        self.data, self.reward, self.out = map(user_path, (self.data, self.reward, self.out))
        check_seed("seed", self.seed, bits=64)
        rules = {"ckpt_every": ">= 0", "batch_size": "> 0", "keep_last": ">= 0"}
        check_ranges("", self, rules)
        if self.batch_size % self.ppo.mini_batch:  # as TRL requires
            left = self.batch_size % self.ppo.mini_batch
            why = (
                f"each epoch's last update would learn from the {left} rollouts left over alone"
                if self.ppo.mini_batch < self.batch_size
                else "a step has fewer rollouts than one mini-batch"
            )
            raise ConfigError(
                f"ppo.mini_batch ({self.ppo.mini_batch}) must divide batch_size "
                f"({self.batch_size}): {why}"
            )


class PolicyWithValue(Transformer):
    """The policy transformer with a scalar value head reading its final hidden states; its
    state dict is the plain model's plus `value_head.*`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.value_head = nn.Linear(cfg.d_model, 1)
        # zero-initialised: every value estimate starts at 0 instead of random noise
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)


def policy_from(pretrained: Pretrained) -> PolicyWithValue:
    """The checkpoint's model with its value head (zeros when it has none)."""
    policy = PolicyWithValue(pretrained.config.model)
    state = policy.state_dict()
    state.update(pretrained.model.state_dict())
    state.update({k: v for k, v in pretrained.weights.items() if k.startswith("value_head.")})
    policy.load_state_dict(state)
    return policy.to(pretrained.model.embed.weight.device)


# ---------------------------------------------------------------- pure pieces


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x − mean) / std over the masked entries, std with Bessel's correction as TRL's
    masked_var has it; `shift_mean=False` keeps the mean and only scales the spread to unit
    std (TRL's masked_whiten)."""
    mean = masked_mean(x, mask)
    count = mask.sum()
    var = masked_mean((x - mean) ** 2, mask) * count / (count - 1).clamp(min=1)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over answers (B, L).

    Each row's real tokens are a prefix (mask 1); the value after the last token is 0, the
    episode having ended. Returns (advantages, returns = advantages + values), 0 beyond the end.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> torch.Tensor:
    """−kl_coef · (log π − log π_ref) on every answer token, plus the score on the last one."""
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask
    last = mask.sum(dim=1).long() - 1
    rows = torch.arange(len(scores), device=scores.device)
    rewards[rows, last] += scores
    return rewards


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped surrogate −min(r·A, clip(r, 1−ε, 1+ε)·A) (PPO, Schulman et al. 2017) and
    the fraction of tokens whose ratio r was clipped."""
    # padded slots hold any log-probs: zeroed before exp, so no inf can reach the masked mean
    ratio = (logprobs - old_logprobs).masked_fill(mask == 0, 0.0).exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    fraction = masked_mean(((ratio - 1).abs() > clip).float(), mask)
    return loss, fraction


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
) -> torch.Tensor:
    """½·max((V − R)², (V_clipped − R)²) with V kept within `clip` of the rollout's values."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    worst = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * masked_mean(worst, mask)


# ---------------------------------------------------------------- rollouts


@dataclass
class Rollouts:
    """A batch of prompt + answer rows and everything PPO computes on them, (B, L) in answer
    coordinates: column j is the j-th answer token, `mask` marks the real ones."""

    tokens: torch.Tensor  # (B, T) prompt + answer, right-padded with PAD
    positions: torch.Tensor  # (B, L) index into tokens[:, :-1] of the input that emitted token j
    mask: torch.Tensor  # (B, L) float
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    entropy: torch.Tensor
    scores: torch.Tensor  # (B,) reward function
    stopped: torch.Tensor  # (B,) bool: the answer ends its turn (<|end_of_turn|>)
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None

    def rows(self, index: torch.Tensor) -> Rollouts:
        """The rollouts of `index` (advantages computed), cut to the columns they use."""
        width = int(self.mask[index].sum(dim=1).max())
        length = int(self.positions[index, :width].max()) + 2  # inputs and their next token

        def cut(values: torch.Tensor) -> torch.Tensor:
            return values[index, :width]

        return Rollouts(
            tokens=self.tokens[index, :length],
            positions=cut(self.positions),
            mask=cut(self.mask),
            logprobs=cut(self.logprobs),
            ref_logprobs=cut(self.ref_logprobs),
            values=cut(self.values),
            entropy=cut(self.entropy),
            scores=self.scores[index],
            stopped=self.stopped[index],
            advantages=cut(self.advantages),
            returns=cut(self.returns),
        )


def layout(
    prompts: list[list[int]], responses: list[list[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens, positions, mask) for prompt + response rows (see `Rollouts`)."""
    rows = [p + r for p, r in zip(prompts, responses, strict=True)]
    width = max(map(len, rows))
    longest = max(map(len, responses))
    tokens = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    positions = torch.zeros(len(rows), longest, dtype=torch.long)
    mask = torch.zeros(len(rows), longest)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        tokens[i, : len(rows[i])] = torch.tensor(rows[i])
        positions[i, : len(response)] = torch.arange(len(response)) + len(prompt) - 1
        mask[i, : len(response)] = 1.0
    return tokens.to(device), positions.to(device), mask.to(device)


def answer_stats(
    model: Transformer,
    value_head: nn.Module | None,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probabilities, values and entropies (B, L) of the answer tokens of `tokens`.

    Only the answer positions go through the LM head: prompt logits are never needed.
    """
    hidden = model.hidden(tokens[:, :-1])
    picked = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
    logits = model.logits(picked).float() / temperature
    targets = tokens[:, 1:].gather(1, positions)
    log_probs = F.log_softmax(logits, dim=-1)
    chosen = log_probs.gather(-1, targets[..., None]).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    values = None if value_head is None else value_head(picked).squeeze(-1).float()
    return chosen, values, entropy


@torch.no_grad()
def rollout(
    policy: PolicyWithValue,
    reference: Transformer,
    reward_fn: RewardFn,
    prompts: list[list[int]],
    hp: PPOHyper,
    generator: torch.Generator,
    vocab_size: int = 0,
) -> Rollouts:
    """Sample answers, score them, and compute the KL-shaped rewards and advantages;
    `vocab_size` as `generate` takes it."""
    device = policy.value_head.weight.device
    responses = generate(
        policy,
        prompts,
        hp.max_new_tokens,
        hp.temperature,
        generator=generator,
        vocab_size=vocab_size,
    )
    if not all(responses):
        raise GenerationError("a prompt fills the model's context: no room for an answer to score")
    tokens, positions, mask = layout(prompts, responses, device)
    with autocast(device):
        logprobs, values, entropy = answer_stats(
            policy, policy.value_head, tokens, positions, hp.temperature
        )
        ref_logprobs, _, _ = answer_stats(reference, None, tokens, positions, hp.temperature)
    scores = reward_fn(prompts, responses).to(device).float()
    # a chat answer ends its turn; one that ends the document (or was cut) is what the reward
    # model never scored, and what missing_eos_penalty is for
    stopped = torch.tensor([r[-1] == END_OF_TURN_ID for r in responses], device=device)
    batch = Rollouts(
        tokens, positions, mask, logprobs, ref_logprobs, values, entropy, scores, stopped
    )
    shaped = scores - hp.missing_eos_penalty * (~stopped).float()
    rewards = token_rewards(shaped, logprobs, ref_logprobs, mask, hp.kl_coef)
    if hp.whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False)
    advantages, batch.returns = gae(rewards, values, mask, hp.gamma, hp.lam)
    batch.advantages = masked_whiten(advantages, mask)
    return batch


def ppo_update(
    policy: PolicyWithValue,
    optimizer: torch.optim.Optimizer,
    batch: Rollouts,
    hp: PPOHyper,
    grad_clip: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """`ppo_epochs` passes of shuffled mini-batches; returns the mean losses of the passes."""
    device = batch.tokens.device
    sums = {"loss": 0.0, "policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0}
    updates = 0
    params = [p for p in policy.parameters() if p.requires_grad]
    for _ in range(hp.ppo_epochs):
        order = torch.randperm(len(batch.scores), generator=generator, device=generator.device)
        for start in range(0, len(order), hp.mini_batch):
            mini = batch.rows(order[start : start + hp.mini_batch])
            with autocast(device):
                logprobs, values, _ = answer_stats(
                    policy, policy.value_head, mini.tokens, mini.positions, hp.temperature
                )
            pg, clipped = policy_loss(logprobs, mini.logprobs, mini.advantages, mini.mask, hp.clip)
            vf = value_loss(values, mini.values, mini.returns, mini.mask, hp.clip_value)
            loss = pg + hp.value_coef * vf + policy.aux_loss()  # MoE load balancing
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(params, grad_clip)
            optimizer.step()
            for key, value in (("loss", loss), ("policy_loss", pg), ("value_loss", vf)):
                sums[key] += value.item()
            sums["clip_fraction"] += clipped.item()
            updates += 1
    return {key: value / updates for key, value in sums.items()}


def rollout_figures(batch: Rollouts) -> dict[str, float]:
    """Reward (the reward function's, before any missing-EOS penalty), KL to the reference
    (summed over an answer's tokens, k1 estimator), entropy, and the share of answers that
    end in a stop token rather than at max_new_tokens."""
    kl = ((batch.logprobs - batch.ref_logprobs) * batch.mask).sum(dim=1)
    return {
        "reward": batch.scores.mean().item(),
        "kl": kl.mean().item(),
        "entropy": masked_mean(batch.entropy, batch.mask).item(),
        "answer_tokens": batch.mask.sum(dim=1).mean().item(),
        "stopped": batch.stopped.float().mean().item(),
    }


def ppo_step(
    policy: PolicyWithValue,
    reference: Transformer,
    optimizer: torch.optim.Optimizer,
    reward_fn: RewardFn,
    prompts: list[list[int]],
    cfg: PPOConfig,
    generator: torch.Generator,
    vocab_size: int = 0,
) -> dict[str, float]:
    """One rollout batch and its PPO epochs; the step's figures for metrics.jsonl."""
    batch = rollout(policy, reference, reward_fn, prompts, cfg.ppo, generator, vocab_size)
    figures = rollout_figures(batch)
    figures.update(ppo_update(policy, optimizer, batch, cfg.ppo, cfg.optim.grad_clip, generator))
    return figures


def frozen(model: Transformer) -> Transformer:
    """`model` in eval mode without gradients: the reference policy."""
    model.eval().requires_grad_(False)
    return model


def toy_run(reward: RewardFn, kl_coef: float, steps: int) -> list[dict]:
    """PPO on a random 32-id model with three-token prompts, rewarded by `reward`: the
    seconds-long check (tests, benchmarks/ppo_curve.py) that updates raise the reward while
    `kl_coef` holds the policy near its reference. The figures of each step."""
    torch.manual_seed(0)
    shape = ModelConfig(vocab_size=32, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=32)
    policy = PolicyWithValue(shape)
    reference = frozen(copy.deepcopy(policy))
    cfg = PPOConfig(batch_size=16)
    cfg.optim.lr = 3e-3
    cfg.ppo.max_new_tokens = 8
    cfg.ppo.kl_coef = kl_coef
    optimizer = build_optimizer(policy, cfg, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    prompts = [[10 + i % 7, 20 + i % 5, 11] for i in range(cfg.batch_size)]
    return [
        ppo_step(policy, reference, optimizer, reward, prompts, cfg, generator)
        for _ in range(steps)
    ]


def check_config(cfg: PPOConfig, world: int) -> None:
    if not cfg.data or not cfg.out or not cfg.reward:
        raise ConfigError(
            "data= (prompts), reward= (reward model checkpoint) and out= are required"
        )
    if world > 1:
        raise ConfigError("refinery ppo runs on one process; launch it without torchrun")
    check_ranges("", cfg, {"max_steps": "> 0"})


def encode_prompts(path: Path, tokenizer, max_tokens: int, skipped: Counter) -> list[list[int]]:
    """Chat-encoded prompts ending in `<|assistant|>`; a prompt over `max_tokens` is skipped."""
    prompts = []
    for conversation in read_prompts(path, skipped):
        ids = encode_chat(tokenizer, conversation, generation_prompt=True)
        if len(ids) > max_tokens:
            skipped["prompt too long for the context"] += 1
            continue
        prompts.append(ids)
    return prompts


def check_same_tokenizer(policy: Path, reward: Path) -> None:
    """The reward model must read token ids the way the policy writes them."""
    ours = ckpt.load_meta(policy).get("tokenizer_sha256")
    theirs = ckpt.load_meta(reward).get("tokenizer_sha256")
    if ours and theirs and ours != theirs:
        raise ckpt.CheckpointError(
            f"{reward} was trained with tokenizer sha256 {theirs}, {policy} with {ours}: the "
            "reward model would misread the policy's answers"
        )


def run(cfg: PPOConfig, source: str, resume: bool = False) -> Path:
    """PPO from the checkpoint `source` per `cfg`; returns the out folder."""
    env = setup_distributed(cfg.device)
    check_config(cfg, env.world)
    with contextlib.ExitStack() as held:
        return _run(cfg, source, resume, env, held)


def _run(
    cfg: PPOConfig, source: str, resume: bool, env: Distributed, held: contextlib.ExitStack
) -> Path:
    out = Path(cfg.out)
    sources = {
        "source": ckpt.resolve_checkpoint(source),
        "reward": ckpt.resolve_checkpoint(cfg.reward),
    }
    for path in sources.values():
        ckpt.refuse_source_as_out(out, path)
    existing = ckpt.refuse_to_overwrite(out, resume, env.is_main)
    if resume and existing:
        last = existing[-1][1]
        meta_then = ckpt.check_continuation(last, "ppo", sources)
        ckpt.check_same_data(meta_then, last, resolve_path(cfg.data))
        changed = ckpt.changed_settings(meta_then.get("ppo", {}), cfg)
        # a step's prompts: step × batch_size on in the seed's order of the prompts that
        # leave ppo.max_new_tokens of room in the context
        what = "the prompt order"
        keys = ("seed", "batch_size", "ppo.max_new_tokens")
        ckpt.refuse_another_order(last, changed, keys, what)
        then = meta_then.get("ppo", {})
        say_changed_settings(changed, meta_then["step"], then, cfg, PPO_ADVICE)
        state = ckpt.load_torch(last, "state.pt")
        if ckpt.resume_step(state, last, cfg.max_steps, say=True) is None:
            return out
    torch.manual_seed(cfg.seed)
    pretrained = load_pretrained(source, env.device)
    tokenizer = pretrained.tokenizer()
    vocab = tokenizer.get_vocab_size()  # the policy's rows past it are never sampled
    policy = policy_from(pretrained)
    make_dropless(policy)
    reference = frozen(pretrained.model)  # the SFT model itself; the policy is a copy
    reward_model = load_reward_model(cfg.reward, env.device)
    reward_path = sources["reward"]
    check_same_tokenizer(pretrained.path, reward_path)

    def reward_fn(prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        return reward_model.score([p + r for p, r in zip(prompts, responses, strict=True)])

    skipped: Counter = Counter()
    data = resolve_path(cfg.data)
    seq_len = pretrained.config.model.seq_len
    max_prompt = seq_len - cfg.ppo.max_new_tokens
    shortest = len(encode_chat(tokenizer, [{"role": "user", "content": ""}], True))
    if max_prompt < shortest:  # not the prompts' fault: every one would be skipped
        raise ConfigError(
            f"ppo.max_new_tokens={cfg.ppo.max_new_tokens} leaves {max_prompt} of the policy's "
            f"{seq_len} positions (model.seq_len) for a prompt, and the chat template alone "
            f"takes {shortest}: lower ppo.max_new_tokens"
        )
    prompts = encode_prompts(data, tokenizer, max_prompt, skipped)
    if not prompts and not skipped:
        raise ConfigError(f"{data}: no prompts in the file")
    if not prompts:
        raise ConfigError(
            f"{data}: no usable prompt (skipped: {dict(skipped)}); at most "
            f"{max_prompt} tokens fit (seq_len minus ppo.max_new_tokens)"
        )
    print(f"ppo: {data}: {len(prompts)} prompts{skip_counts(skipped)}", file=sys.stderr)
    for warning in data_warnings(len(prompts), 0, skipped, cfg.batch_size, max_prompt):
        print(f"warning: {data}: {warning}", file=sys.stderr)

    meta = {
        "tokenizer_sha256": ckpt.load_meta(pretrained.path).get("tokenizer_sha256"),
        "method": "ppo",
        **ckpt.source_record("source", pretrained.path, out, weights=True),
        **ckpt.source_record("reward", reward_path, out, weights=True),
        "chat_template": CHAT_TEMPLATE,
        "data": str(data),
        "data_sha256": sha256_file(data),
        "prompts": len(prompts),
        "skipped": dict(skipped),
        "ppo": dataclasses.asdict(cfg),
    }

    optimizer = build_optimizer(policy, cfg, env.device)
    generator = torch.Generator(env.device).manual_seed(cfg.seed)
    start_step = 0
    held.enter_context(ckpt.run_lock(out, seen=existing))
    if resume and existing:
        load_model_state(policy, optimizer, last, with_optimizer=True)
        start_step = state["step"]
        generator.set_state(state["generator"])
        truncate_metrics(out / "metrics.jsonl", start_step)
        print(f"resuming from {last}: step {start_step}", file=sys.stderr)
    else:
        if resume:
            print(ckpt.fresh_start_note(out), file=sys.stderr)
        (out / "metrics.jsonl").unlink(missing_ok=True)

    def save(step: int, preemption: bool = False) -> None:
        optim_state = get_optimizer_state_dict(policy, optimizer, options=FULL)
        state = {"step": step, "generator": generator.get_state()}
        config = dataclasses.asdict(pretrained.config)  # the architecture load_pretrained reads
        written = {**meta, "preemption": True} if preemption else meta
        parts = (
            policy.state_dict(),
            optim_state,
            state,
            config,
            written,
            pretrained.tokenizer_path,
        )
        ckpt.save_checkpoint(out, step, *parts, keep_last=cfg.keep_last)

    log = MetricsLog(out, start_step, True, cfg.tensorboard)
    progress = progress_bar(cfg.progress, cfg.max_steps, start_step, "ppo")
    stop = StopRequest()  # SIGTERM or a first Ctrl-C: a checkpoint after the step, as pretraining
    try:
        for step in range(start_step, cfg.max_steps):
            tick = time.perf_counter()
            lr = set_lr(optimizer, step, cfg.max_steps, cfg.optim.lr, cfg.schedule)
            batch = [
                prompts[i] for i in batch_indices(len(prompts), cfg.batch_size, step, cfg.seed)
            ]
            figures = ppo_step(
                policy, reference, optimizer, reward_fn, batch, cfg, generator, vocab
            )
            done = step + 1
            if not all(math.isfinite(v) for v in figures.values()):
                raise TrainingDiverged(f"step {done}: non-finite figures {figures}; stopped")
            record = {"step": done, **figures, "lr": lr}
            record["step_seconds"] = time.perf_counter() - tick
            log.write(record)
            on_schedule = done == cfg.max_steps or (cfg.ckpt_every and done % cfg.ckpt_every == 0)
            if stop.save_or_stop(None, done, on_schedule, save):
                break
            progress.update(1)
            progress.set_postfix(reward=f"{figures['reward']:.3f}", kl=f"{figures['kl']:.3f}")
    finally:
        stop.restore()
        progress.close()
        log.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """`refinery ppo --from SFT_CKPT reward=RM_CKPT data=PROMPTS out=DIR [key=value ...]`."""
    parser = argparse.ArgumentParser(prog="refinery ppo", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="SFT run or ckpt-<step>")
    parser.add_argument(
        "--config",
        action=GivenOnce,
        default=str(resolve_path("conf/posttrain/ppo.yaml")),
        help="YAML config (default conf/posttrain/ppo.yaml)",
    )
    parser.add_argument("--resume", action="store_true", help="continue out's newest checkpoint")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(PPOConfig, args.config, args.overrides)
    run(cfg, args.source, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(console(main))
