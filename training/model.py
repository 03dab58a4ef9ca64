"""Decoder-only transformer, Llama style: RoPE, RMSNorm, SwiGLU, grouped-query attention.

Attention goes through `F.scaled_dot_product_attention`, which picks flash / cuDNN kernels on
GPU. The feed-forward is either a dense SwiGLU or a top-k mixture of SwiGLU experts.
Generation passes a `KVCache`: each layer's keys and values are kept, so a new token attends to
them instead of recomputing the whole prefix. Training never passes one and runs unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from refinery.tokenizer import PAD_ID
from training.config import ModelConfig
from training.float8 import autocast_input, float8_head_loss, float8_linear
from training.loss import next_token_loss


def resolved_ffn_hidden(cfg: ModelConfig) -> int:
    """Llama's 2/3 * 4d hidden size, rounded up to a multiple of 64 for tensor-core shapes."""
    if cfg.ffn_hidden:
        return cfg.ffn_hidden
    return 64 * math.ceil(8 * cfg.d_model / 3 / 64)


def resolved_expert_hidden(cfg: ModelConfig) -> int:
    """Each expert's SwiGLU hidden size: `moe.ffn_hidden`, else the dense one."""
    return cfg.moe.ffn_hidden or resolved_ffn_hidden(cfg)


def rope_tables(head_dim: int, seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()  # (T, head_dim / 2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :half], x[..., half:]) by the angles whose cos/sin broadcast over
    x's leading dimensions, in fp32 at least (bf16 activations would round the angles)."""
    half = x.shape[-1] // 2
    dtype = torch.promote_types(x.dtype, torch.float32)
    x1, x2 = x[..., :half].to(dtype), x[..., half:].to(dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).type_as(x)


class Rotation(torch.autograd.Function):
    """RoPE with its backward written out: a rotation's transpose is the rotation by the
    opposite angle. Compiled, that is one pointwise kernel each way; autograd's own backward of
    the slices, products and cat took 20% of the attention block's time on an H200."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return rotate(x, cos, sin)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return rotate(grad, cos, -sin), None, None


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on x (B, T, heads, head_dim); cos/sin (T, 1, head_dim / 2) or (B, T, 1, ...)."""
    return Rotation.apply(x, cos, sin)


class KVCache:
    """Keys and values of every layer for a batch of left-padded sequences being generated.

    Sequence i starts with `pads[i]` padding slots: they are never attended to, and its real
    tokens take RoPE positions 0, 1, ... from the first real slot, so a padded sequence computes
    exactly what it would alone. Keys are stored after RoPE with the model's `n_kv_heads`
    (grouped-query attention keeps the cache n_heads / n_kv_heads times smaller).
    """

    def __init__(self, n_layers: int, pads: torch.Tensor, max_len: int, seq_len: int):
        self.pads = pads  # (B,) padding slots in front of each sequence
        self.max_len = max_len
        self.seq_len = seq_len  # positions the RoPE tables hold
        self.length = 0  # slots filled so far
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.mask: torch.Tensor | None = None  # (B, 1, new, length + new) for the current step

    def begin_step(self, new: int) -> torch.Tensor:
        """Set the attention mask for `new` slots; return their RoPE positions (B, new)."""
        end = self.length + new
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} slots; {end} requested")
        device = self.pads.device
        query = torch.arange(self.length, end, device=device)
        key = torch.arange(end, device=device)
        causal = key[None, :] <= query[:, None]  # (new, end)
        real = key[None, :] >= self.pads[:, None]  # (B, end)
        # a padding slot sees itself only: its output is ignored but must stay finite, since a
        # query with no visible key gives NaN, which would reach real tokens through the values
        itself = key[None, :] == query[:, None]
        self.mask = (causal & (real[:, None] | itself))[:, None]
        # a sequence that already ended keeps being fed (its outputs are ignored) and may run
        # past the RoPE table: clamp. The caller stops real sequences at seq_len.
        return (query[None, :] - self.pads[:, None]).clamp(0, self.seq_len - 1)

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Write this step's keys/values (B, H_kv, new, D); return all of them so far."""
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.max_len, k.shape[3])
            self.keys[layer] = k.new_zeros(shape)
            self.values[layer] = v.new_zeros(shape)
        end = self.length + k.shape[2]
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def end_step(self, new: int) -> None:
        self.length += new


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # weight in the input's dtype: bf16 q/k under autocast keep the fused kernel
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.n_kv_heads = cfg.n_kv_heads or cfg.n_heads  # shapes checked by ModelConfig
        self.head_dim = cfg.d_model // cfg.n_heads
        kv_dim = self.n_kv_heads * self.head_dim
        self.qkv = nn.Linear(cfg.d_model, cfg.d_model + 2 * kv_dim, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.q_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        B, T, C = x.shape
        kv_dim = self.n_kv_heads * self.head_dim
        qk, v = self.qkv(x).split([C + kv_dim, kv_dim], dim=-1)
        # q and k as one (B, T, H + H_kv, D) tensor: one rotation, in the projection's layout
        qk = qk.view(B, T, self.n_heads + self.n_kv_heads, self.head_dim)
        if self.q_norm is not None:  # back to v's dtype in case autocast runs norms in fp32
            q, k = qk.split([self.n_heads, self.n_kv_heads], dim=2)
            qk = torch.cat((self.q_norm(q).type_as(v), self.k_norm(k).type_as(v)), dim=2)
        q, k = apply_rope(qk, cos, sin).transpose(1, 2).split([self.n_heads, self.n_kv_heads], 1)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        grouped = {"enable_gqa": True} if self.n_kv_heads != self.n_heads else {}
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, **grouped)
        else:
            k, v = cache.store(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=cache.mask, **grouped)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class MoE(nn.Module):
    """Top-k routed SwiGLU experts with a Switch-style load-balancing loss and a capacity cap.

    In training, each expert takes at most capacity = ceil(capacity_factor * tokens * top_k /
    experts) token assignments; assignments over capacity are dropped (the residual stream
    carries those tokens unchanged through this layer): an expert keeps its first assignments
    in the micro-batch's token order, a token's second choice alike with others' first
    (Megablocks' order, not GShard's first-choice priority). Which are dropped depends on the
    other tokens of the forward, pads included, so the cap holds in training only, and not at all
    with `capacity_factor=0` (`make_dropless`): in eval mode (validation, evaluation,
    generation, reference log-probs) a token's output depends on its own sequence alone.
    The load-balancing statistics count the tokens `counted` marks (not post-training's pads).
    Top-k weights are renormalised over the chosen experts (Mixtral) when k > 1; with k = 1
    the expert's output is scaled by its gate probability (Switch), else the router would
    learn from the balancing loss alone. `dropped` is the share of assignments the last
    forward dropped over capacity.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        moe = cfg.moe
        self.top_k = moe.top_k
        self.capacity_factor = moe.capacity_factor
        hidden = resolved_expert_hidden(cfg)
        self.router = nn.Linear(cfg.d_model, moe.num_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(cfg.d_model, hidden) for _ in range(moe.num_experts))
        self.aux_loss = torch.zeros(())
        self.dropped = 0.0

    def forward(self, x: torch.Tensor, counted: torch.Tensor | None = None) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        n_tokens, n_experts = x.shape[0], len(self.experts)
        probs = self.router(x).float().softmax(dim=-1)
        weights, chosen = probs.topk(self.top_k, dim=-1)  # (N, k)
        if self.top_k > 1:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        # load balancing (Switch Transformer eq. 4): experts * sum_e f_e * P_e over counted tokens
        routed = F.one_hot(chosen, n_experts).float().sum(dim=1)  # (N, E)
        if counted is None:
            fraction, mean_prob = routed.mean(dim=0) / self.top_k, probs.mean(dim=0)
        else:
            share = counted.reshape(-1, 1).float() / counted.sum().clamp(min=1)
            fraction, mean_prob = (routed * share).sum(dim=0) / self.top_k, (probs * share).sum(0)
        self.aux_loss = n_experts * (fraction * mean_prob).sum()
        capacity = n_tokens  # an expert gets each token once at most
        if self.training and self.capacity_factor:
            capacity = math.ceil(self.capacity_factor * n_tokens * self.top_k / n_experts)
        out = torch.zeros_like(x)
        flat_expert = chosen.reshape(-1)
        flat_token = torch.arange(n_tokens, device=x.device).repeat_interleave(self.top_k)
        flat_weight = weights.reshape(-1)
        dropped = 0
        for e, expert in enumerate(self.experts):
            # an expert with no tokens still runs, on zero rows: its gradient is zero, not
            # missing, so every rank of FSDP reduce-scatters the same parameters
            routed_here = (flat_expert == e).nonzero().squeeze(-1)
            slots = routed_here[:capacity]
            dropped += routed_here.numel() - slots.numel()
            tokens = flat_token[slots]
            y = expert(x[tokens]) * flat_weight[slots, None].to(x.dtype)
            out.index_add_(0, tokens, y)
        self.dropped = dropped / flat_expert.numel()
        return out.reshape(shape)


def make_dropless(model: nn.Module) -> None:
    """No expert capacity cap in `model`'s MoE layers, in training too: post-training needs a
    row's output to depend on that row alone (DPO's pair against its reference, PPO's ratio
    against the rollout, a gradient that does not depend on the micro-batch split)."""
    for module in model.modules():
        if isinstance(module, MoE):
            module.capacity_factor = 0.0


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.routed = bool(cfg.moe.num_experts)
        if self.routed:
            self.ffn = MoE(cfg)
        else:
            self.ffn = SwiGLU(cfg.d_model, resolved_ffn_hidden(cfg))

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        counted: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, layer)
        h = self.ffn_norm(x)
        return x + (self.ffn(h, counted) if self.routed else self.ffn(h))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("model.vocab_size must be resolved before building the model")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        # tied: the output projection reuses embed.weight, so the state dict holds it once
        self.lm_head = None
        self.float8_head = False  # the output projection multiplies in float8 (train.float8_head)
        self.float8_head_rounding = (
            "nearest"  # of its logits' gradient (train.float8_head_rounding)
        )
        # under autocast, the residual stream in autocast's dtype instead of the embedding's
        # fp32 (train.autocast_residual)
        self.autocast_residual = False
        # in training, recompute each block in the backward (train.activation_checkpointing)
        self.checkpoint_blocks = False
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.d_model // cfg.n_heads, cfg.seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, std) everywhere; residual output projections scaled by 1/sqrt(2 * layers)
        (GPT-2) so the residual stream's variance does not grow with depth."""
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if p.ndim < 2:
                continue  # norm weights stay at 1
            scale = 1.0
            if name.endswith(("attn.out.weight", "down.weight")):
                scale = 1.0 / math.sqrt(2 * self.cfg.n_layers)
            nn.init.normal_(p, mean=0.0, std=std * scale)
        for norm in self.modules():
            if isinstance(norm, RMSNorm):
                norm.weight.fill_(1.0)

    def hidden(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Final-norm hidden states (B, T, d_model): what the LM head, a reward model's score
        head or PPO's value head read. With `cache`, `tokens` continue the cached sequences."""
        T = tokens.shape[1]
        if cache is None:  # (T, 1, head_dim / 2), broadcast over batch and heads
            cos, sin = self.rope_cos[:T, None], self.rope_sin[:T, None]
        else:  # per-sequence positions: (B, T, 1, head_dim / 2)
            positions = cache.begin_step(T)
            cos, sin = self.rope_cos[positions][:, :, None], self.rope_sin[positions][:, :, None]
        x = self.embed(tokens)
        # fp32 unless autocast_residual: FSDP on GPU gathers the embedding in bf16
        x = autocast_input(x) if self.autocast_residual else x.float()
        counted = tokens != PAD_ID if self.cfg.moe.num_experts else None  # MoE balance
        recompute = self.checkpoint_blocks and torch.is_grad_enabled() and cache is None
        for layer, block in enumerate(self.blocks):
            if recompute:
                x = checkpoint(block, x, cos, sin, None, layer, counted, use_reentrant=False)
            else:
                x = block(x, cos, sin, cache, layer, counted)
        if cache is not None:
            cache.end_step(T)
        return self.norm(x)

    def new_cache(self, pads: torch.Tensor, max_len: int) -> KVCache:
        """An empty cache for len(pads) sequences of at most `max_len` slots, padding included."""
        return KVCache(self.cfg.n_layers, pads, max_len, self.cfg.seq_len)

    def output_weight(self) -> torch.Tensor:
        return self.embed.weight if self.lm_head is None else self.lm_head.weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.float8_head:
            return float8_linear(hidden, self.output_weight())
        return F.linear(hidden, self.output_weight())

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits for `tokens` (B, T); with `targets`, the mean cross-entropy instead. The MoE
        load-balancing loss of this forward is then available from `aux_loss()`."""
        hidden = self.hidden(tokens)
        if targets is None:
            return self.logits(hidden)
        if self.float8_head:  # projection and loss fused: no absolute maximum of the gradient
            weight = self.output_weight()
            return float8_head_loss(hidden, weight, targets, self.float8_head_rounding)
        return next_token_loss(self.logits(hidden), targets)

    def aux_loss(self) -> torch.Tensor | float:
        """Weighted MoE load-balancing loss of the last forward (0 for a dense model)."""
        moe = self.cfg.moe
        if not moe.num_experts or moe.aux_loss_weight == 0:
            return 0.0
        return moe.aux_loss_weight * sum(b.ffn.aux_loss for b in self.blocks) / len(self.blocks)

    def moe_stats(self) -> tuple[torch.Tensor, float]:
        """The last forward's unweighted load-balancing loss (1 when balanced) and share of
        expert assignments dropped over capacity, each a mean over the MoE layers."""
        layers = [b.ffn for b in self.blocks]
        balance = sum(layer.aux_loss for layer in layers) / len(layers)
        return balance, sum(layer.dropped for layer in layers) / len(layers)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 * N_matmul + 12 * L * H * Q * T (PaLM appendix B).

        N_matmul counts the weights a token multiplies with: every matrix (not the norms'
        gains) except the embedding lookup, but including the output projection (which is the
        embedding matrix when tied), and for mixture-of-experts layers only the top_k experts
        a token is routed to.
        """
        cfg = self.cfg
        matmul = sum(p.numel() for p in self.parameters() if p.ndim >= 2)  # not the norms' gains
        n = matmul - self.embed.weight.numel()
        if self.lm_head is None:
            n += self.embed.weight.numel()  # the tied output projection is a matmul
        if cfg.moe.num_experts:
            per_expert = sum(p.numel() for p in self.blocks[0].ffn.experts[0].parameters())
            idle = cfg.moe.num_experts - cfg.moe.top_k
            n -= cfg.n_layers * idle * per_expert
        head_dim = cfg.d_model // cfg.n_heads
        return 6 * n + 12 * cfg.n_layers * cfg.n_heads * head_dim * cfg.seq_len
