"""Training config schema: one small dataclass per component, loaded by `refinery.config`.

The top-level keys `data`, `out`, `max_steps`, `seed` and `ckpt_every` are the command-line
contract shared by every training command (`refinery train ... data=X out=Y max_steps=N`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from refinery.config import ConfigError, check_ranges, check_seed, user_path


@dataclass
class MoEConfig:
    num_experts: int = 0  # 0: dense SwiGLU feed-forward
    top_k: int = 2
    # expert capacity in training = factor * tokens * top_k / experts; 0: no cap (dropless)
    capacity_factor: float = 1.25
    aux_loss_weight: float = 0.01  # Switch-Transformer load-balancing loss
    ffn_hidden: int = 0  # per expert; 0: same as the dense ffn_hidden

    def __post_init__(self) -> None:
        rules = {"num_experts": ">= 0", "top_k": "> 0", "capacity_factor": ">= 0"}
        check_ranges("model.moe", self, rules | {"aux_loss_weight": ">= 0", "ffn_hidden": ">= 0"})
        if self.num_experts and self.top_k > self.num_experts:
            raise ConfigError(
                f"model.moe.top_k {self.top_k} exceeds model.moe.num_experts {self.num_experts}"
            )


@dataclass
class ModelConfig:
    vocab_size: int = 0  # 0: the manifest's vocab_size rounded up to a multiple of 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 0  # 0: n_heads (no grouping); fewer heads = grouped-query attention
    ffn_hidden: int = 0  # 0: 8/3 * d_model rounded up to a multiple of 64 (Llama)
    seq_len: int = 64
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    qk_norm: bool = False
    tie_embeddings: bool = True
    init_std: float = 0.02
    moe: MoEConfig = field(default_factory=MoEConfig)

    def __post_init__(self) -> None:
        rules = {"vocab_size": ">= 0", "n_kv_heads": ">= 0", "ffn_hidden": ">= 0"}
        positive = ("d_model", "n_layers", "n_heads", "seq_len", "rope_theta", "norm_eps")
        rules |= {name: "> 0" for name in (*positive, "init_std")}
        check_ranges("model", self, rules)
        kv_heads = self.n_kv_heads or self.n_heads
        head_dim, odd = divmod(self.d_model, self.n_heads)
        if odd or head_dim % 2 or self.n_heads % kv_heads:  # RoPE rotates pairs of dimensions
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be model.n_heads ({self.n_heads}) times an "
                f"even head size, and model.n_heads divide by model.n_kv_heads ({kv_heads})"
            )


@dataclass
class OptimConfig:
    lr: float = 3e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1  # matrices only; norms and embeddings are not decayed
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping

    def __post_init__(self) -> None:
        rules = {"lr": "> 0", "eps": "> 0", "weight_decay": ">= 0", "grad_clip": ">= 0"}
        check_ranges("optim", self, rules)
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")


@dataclass
class ScheduleConfig:
    # cosine: warmup, then cosine to min_lr. wsd: warmup, constant, then decay over the last
    # decay_fraction of steps. linear / 1-sqrt: decay from lr to min_lr over all steps (annealing).
    kind: Literal["cosine", "wsd", "linear", "1-sqrt", "constant"] = "cosine"
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1  # min_lr = ratio * lr
    decay_fraction: float = 0.2  # wsd only
    decay_shape: Literal["linear", "1-sqrt"] = "1-sqrt"  # wsd only

    def __post_init__(self) -> None:
        rules = {"warmup_steps": ">= 0", "min_lr_ratio": "in [0, 1]", "decay_fraction": "in [0, 1]"}
        check_ranges("schedule", self, rules)


@dataclass
class LoaderConfig:
    mixture: str = "pretrain"  # a mixture name from the manifest
    prefetch: int = 2  # batches prepared ahead by a background thread

    def __post_init__(self) -> None:
        check_ranges("loader", self, {"prefetch": ">= 0"})


@dataclass
class SpikeConfig:
    window: int = 50  # rolling window of recent losses
    min_history: int = 20  # no spike decisions before this many losses
    zscore: float = 6.0  # skip the update when (loss - mean) / std exceeds this; 0 disables
    # stop after this many skipped updates in a row: the loss has moved to a new level, and
    # skipping on would spend the rest of the run on nothing (0: never stop)
    max_skips_in_a_row: int = 10

    def __post_init__(self) -> None:
        rules = {"window": "> 0", "min_history": ">= 0", "zscore": ">= 0"}
        check_ranges("train.spike", self, rules | {"max_skips_in_a_row": ">= 0"})
        if self.zscore and self.window < max(2, self.min_history):
            raise ConfigError(
                f"train.spike.window={self.window} holds fewer losses than min_history="
                f"{self.min_history} (and 2) needs: the guard would never decide"
            )


@dataclass
class TrainLoopConfig:
    global_batch_tokens: int = 4096  # per optimizer step, all ranks and micro-steps together
    micro_batch: int = 8  # sequences per rank per forward pass
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    # default: torch.compile's defaults. coordinate-descent: Inductor also tunes each generated
    # kernel's launch configuration (slower compile, faster steps on GPU). max-autotune: also
    # benchmarks GEMM backends, Triton templates included (mode max-autotune-no-cudagraphs).
    compile_mode: Literal["default", "coordinate-descent", "max-autotune"] = "default"
    # the blocks' linear layers multiply in float8 with per-tensor scales (training/float8.py);
    # on CUDA that needs compute capability 8.9+ (Ada, Hopper)
    float8: bool = False
    # the output projection (LM head) and the loss as one float8 function: the largest matmul
    # of a small model, but the one whose errors reach the logits directly, so off unless
    # asked for (+9.2% at 124M on an H200; a short GPU run's loss may have fallen slower in one
    # seed of 3)
    float8_head: bool = False
    # how the float8 head casts the logits' gradient to e5m2: to nearest (slightly biased: the
    # other tokens are pushed down 0.1-0.35% too weakly), or stochastically (unbiased, 1.3-2.7x
    # the rounding noise); benchmarks/float8_rounding.py measures both
    float8_head_rounding: Literal["nearest", "stochastic"] = "nearest"
    # the residual stream in bf16 under autocast (GPU), as bf16 parameters give it (torchtitan,
    # Megatron's default), instead of fp32 from the fp32 embedding: half the traffic of the
    # norms and residual adds, at bf16's rounding of the sum. CPU runs stay fp32 throughout.
    autocast_residual: bool = False
    # recompute each block's activations in the backward instead of keeping them (torchtitan's
    # full activation checkpointing): about a third more compute for the activation memory of
    # one block instead of all, for models or micro-batches that do not fit otherwise
    activation_checkpointing: bool = False
    # torch.profiler over steps profile_start .. profile_start + profile_steps - 1, a trace
    # and a table of the costliest operators per rank in out/profile/ (training/profiler.py);
    # 0: off
    profile_start: int = 0
    profile_steps: int = 2
    parallel: Literal["ddp", "fsdp"] = "ddp"  # used when launched with torchrun, WORLD_SIZE > 1
    keep_last: int = 3  # checkpoints kept in `out`; 0 keeps all
    save_final: bool = True  # checkpoint at max_steps even off the ckpt_every grid
    eval_every: int = 0  # steps between validation runs; 0: only at the end
    eval_tokens: int = (
        8192  # validation tokens per evaluation (whole sequences, all ranks); 0: none
    )
    tensorboard: bool = True
    progress: bool = True  # tqdm bar on rank 0
    peak_tflops: float = 989.0  # H100 SXM bf16 dense, for MFU
    spike: SpikeConfig = field(default_factory=SpikeConfig)

    def __post_init__(self) -> None:
        rules = {"global_batch_tokens": "> 0", "micro_batch": "> 0", "keep_last": ">= 0"}
        rules |= {"eval_every": ">= 0", "eval_tokens": ">= 0", "profile_start": ">= 0"}
        check_ranges("train", self, rules | {"profile_steps": "> 0", "peak_tflops": "> 0"})


@dataclass
class AnnealConfig:
    decay: Literal["linear", "1-sqrt"] = "linear"
    mixture: str = "anneal"
    tokens: int = 0  # token budget of the decay; sets max_steps when > 0
    average_last: int = 0  # average the weights of the last K checkpoints at the end; 0: off

    def __post_init__(self) -> None:
        check_ranges("anneal", self, {"tokens": ">= 0", "average_last": ">= 0"})
        if self.average_last == 1:
            raise ConfigError("anneal.average_last must be 0 (off) or at least 2, got 1")


@dataclass
class TrainConfig:
    data: str = ""  # tokens folder with manifest.json
    out: str = ""  # run folder: metrics.jsonl, ckpt-<step>/
    max_steps: int = 100
    seed: int = 0
    ckpt_every: int = 0  # 0: only the final checkpoint
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    anneal: AnnealConfig = field(default_factory=AnnealConfig)

    def __post_init__(self) -> None:
        self.data, self.out = user_path(self.data), user_path(self.out)
        check_ranges("", self, {"ckpt_every": ">= 0"})
        check_seed("seed", self.seed, bits=64)
        if 0 < self.train.eval_tokens < self.model.seq_len:
            raise ConfigError(
                f"train.eval_tokens={self.train.eval_tokens} holds no whole sequence of "
                f"model.seq_len={self.model.seq_len}: raise it, or 0 for no validation"
            )

    def steps_for_tokens(self, tokens: int) -> int:
        """Optimizer steps that train on `tokens` tokens (at least one)."""
        return max(1, tokens // self.train.global_batch_tokens)
