"""GPU time of one layer's parts at the GPT-2-124M shape, with RoPE and loss variants A/B'd.

    python -m benchmarks.block_timing [--out results.json] [--kernels 4] [--parts head: mlp]
    python -m benchmarks.block_timing --check        # CPU: every variant matches the model's

Each part is compiled on its own (default mode), run forward and backward under bf16 autocast
at micro-batch 32 x 1024, and timed with CUDA events: the attention block (norm, QKV
projection, RoPE, SDPA, output projection) as `training.model.Attention` has it and in the
other formulations of `ATTENTION`, the SwiGLU block, both blocks with `train.float8`'s linear
layers, and the LM head with each loss of `LOSSES` and in float8 (`train.float8_head`: projection
and loss fused); and
the model's blocks and head with a bf16 residual stream instead of fp32, as
`train.autocast_residual` makes it.
12 x (attention + MLP) + head is about one micro-batch of the model, so the table says where a
step's time goes and what a formulation is worth before it is tried in the whole trainer. The
top kernels of each part are listed from torch.profiler; `--out` keeps all of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig
from training.float8 import convert_to_float8, float8_head_loss
from training.loss import next_token_loss
from training.model import (
    Attention,
    RMSNorm,
    Rotation,
    SwiGLU,
    resolved_ffn_hidden,
    rope_tables,
    rotate,
)

VOCAB, D_MODEL, HEADS, SEQ, MICRO = 50304, 768, 12, 1024, 32
HEAD_DIM = D_MODEL // HEADS


# Each formulation maps the fused QKV projection (B, T, 3C) of a multi-head layer (no grouped
# queries, no QK-norm), with cos/sin (T, D/2), to the attention output (B, T, C), as
# `training.model.Attention` does in its own way.


def heads(qkv: torch.Tensor, n_heads: int) -> list[torch.Tensor]:
    """q, k, v as (B, T, H, D) views of the fused projection's output."""
    B, T, three_c = qkv.shape
    return [t.view(B, T, n_heads, -1) for t in qkv.split(three_c // 3, dim=-1)]


def causal(q, k, v) -> torch.Tensor:
    """SDPA on (B, H, T, D) inputs, back to (B, T, C)."""
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)
    return y.reshape(*y.shape[:2], -1)


def bhtd(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.transpose(1, 2) for t in tensors]


def autograd_rope(qkv, cos, sin, n_heads):
    """The model before 2026-12-04: q and k rotated apart on (B, H, T, D), autograd backward."""
    q, k, v = bhtd(*heads(qkv, n_heads))
    return causal(rotate(q, cos, sin), rotate(k, cos, sin), v)


def autograd_rope_before_transpose(qkv, cos, sin, n_heads):
    q, k, v = heads(qkv, n_heads)
    c, s = cos[:, None], sin[:, None]  # (T, 1, D/2) over (B, T, H, D/2)
    return causal(*bhtd(rotate(q, c, s), rotate(k, c, s), v))


def rotation_apart(qkv, cos, sin, n_heads):
    q, k, v = bhtd(*heads(qkv, n_heads))
    return causal(Rotation.apply(q, cos, sin), Rotation.apply(k, cos, sin), v)


def rotation_apart_before_transpose(qkv, cos, sin, n_heads):
    q, k, v = heads(qkv, n_heads)
    c, s = cos[:, None], sin[:, None]
    return causal(*bhtd(Rotation.apply(q, c, s), Rotation.apply(k, c, s), v))


def without_rope(qkv, cos, sin, n_heads):  # the bound: what no RoPE cost at all would give
    return causal(*bhtd(*heads(qkv, n_heads)))


# name -> formulation; None is training.model.Attention itself
ATTENTION: dict[str, Callable | None] = {
    "model": None,
    "autograd-rope": autograd_rope,
    "autograd-rope-before-transpose": autograd_rope_before_transpose,
    "rotation-apart": rotation_apart,
    "rotation-apart-before-transpose": rotation_apart_before_transpose,
    "no-rope": without_rope,
}


def logsumexp_loss(logits, targets):
    """Cross-entropy as logsumexp minus the target's logit: the backward recomputes the
    softmax from the bf16 logits and one saved value per row."""
    logits = logits.float()
    picked = logits.gather(-1, targets[..., None]).squeeze(-1)
    return (torch.logsumexp(logits, dim=-1) - picked).mean()


def autograd_cross_entropy(logits, targets):
    """The model's loss before 2026-12-04: F.cross_entropy with autograd's backward."""
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


LOSSES: dict[str, Callable] = {
    "model": next_token_loss,
    "autograd-cross-entropy": autograd_cross_entropy,
    "logsumexp": logsumexp_loss,
}

CONFIG = ModelConfig(vocab_size=VOCAB, d_model=D_MODEL, n_heads=HEADS, seq_len=SEQ)


class AttentionBlock(nn.Module):
    def __init__(self, formulation: Callable | None):
        super().__init__()
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.attn = Attention(CONFIG)
        self.formulation = formulation
        cos, sin = rope_tables(HEAD_DIM, SEQ, 10000.0)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x):
        return x + attend(self.attn, self.formulation, self.norm(x), self.cos, self.sin)


def attend(attention: Attention, formulation, x, cos, sin):
    if formulation is None:  # the model takes cos/sin as (T, 1, D/2)
        return attention(x, cos[:, None], sin[:, None])
    return attention.out(formulation(attention.qkv(x), cos, sin, HEADS))


class MLPBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.ffn = SwiGLU(D_MODEL, resolved_ffn_hidden(CONFIG))

    def forward(self, x):
        return x + self.ffn(self.norm(x))


class Head(nn.Module):
    def __init__(self, loss: Callable | None):
        """`loss` of the logits; None: projection and loss as `train.float8_head` has them."""
        super().__init__()
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.loss = loss

    def forward(self, x, targets):
        if self.loss is None:
            return float8_head_loss(self.norm(x), self.embed.weight, targets)
        return self.loss(F.linear(self.norm(x), self.embed.weight), targets)


def float8(block: nn.Module) -> nn.Module:
    """The block with its linear layers as `train.float8` makes them."""
    convert_to_float8(block)
    return block


def time_part(name: str, module: nn.Module, kernels: int) -> dict:
    """Mean ms of forward + backward over 20 iterations after 3 warm-ups, and top kernels.
    The residual stream comes in fp32, as the model's embedding gives it under autocast, or
    in bf16 for the parts named `+bf16-residual`."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    module = module.cuda()
    residual = torch.bfloat16 if name.endswith("+bf16-residual") else torch.float32
    x = torch.randn(MICRO, SEQ, D_MODEL, device="cuda", dtype=residual, requires_grad=True)
    targets = torch.randint(0, VOCAB, (MICRO, SEQ), device="cuda")
    compiled = torch.compile(module)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = compiled(x, targets) if isinstance(module, Head) else compiled(x)
        out.backward(torch.ones_like(out))  # a block's output gradient: ones

    started = time.perf_counter()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    compile_seconds = time.perf_counter() - started
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        step()
    end.record()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_device_time_total)
    every = [[e.key, round(e.self_device_time_total / 1000, 4)] for e in events]
    return {
        "part": name,
        "ms": start.elapsed_time(end) / 20,
        "compile_seconds": round(compile_seconds, 1),
        "top_kernels_ms": [[key[:90], ms] for key, ms in every[:kernels]],
        "kernels_ms": [[key, ms] for key, ms in every if ms > 0],  # all of them, for later
    }


def check() -> int:
    """Every formulation gives the model's attention output and input gradient, and every loss
    the model's loss and logits gradient (fp64, CPU)."""
    torch.manual_seed(0)
    attention = Attention(CONFIG).double()
    cos, sin = (t.double() for t in rope_tables(HEAD_DIM, SEQ, 10000.0))
    x = torch.randn(2, SEQ, D_MODEL, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, SEQ, D_MODEL, dtype=torch.float64)
    logits = torch.randn(2, 8, VOCAB, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, VOCAB, (2, 8))
    failed = 0
    for kind, variants, inputs, run in [
        ("attention", ATTENTION, x, lambda f: attend(attention, f, x, cos, sin) * weights),
        ("loss", LOSSES, logits, lambda f: f(logits, targets)),
    ]:
        reference = None
        for name, variant in variants.items():
            if name == "no-rope":
                continue
            inputs.grad = None
            out = run(variant)
            out.sum().backward()
            if reference is None:
                reference = (out.detach(), inputs.grad)
            # the losses upcast bf16 to fp32, which takes fp64 down to fp32: compare in fp64
            same = torch.allclose(out.double(), reference[0].double()) and torch.allclose(
                inputs.grad.double(), reference[1].double()
            )
            failed += not same
            print(f"{kind}:{name:<40} {'matches' if same else 'DIFFERS'}")
    return int(failed > 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument("--kernels", type=int, default=4, help="top kernels listed per part")
    parser.add_argument("--check", action="store_true", help="CPU equivalence of the variants")
    parser.add_argument("--parts", nargs="*", help="part names or prefixes to time (default: all)")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    if not torch.cuda.is_available():
        print("needs a CUDA device (or --check)", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    parts = [(f"attention:{name}", AttentionBlock(f)) for name, f in ATTENTION.items()]
    parts += [("mlp", MLPBlock())]
    parts += [("attention:model+float8", float8(AttentionBlock(None)))]
    parts += [("mlp+float8", float8(MLPBlock()))]
    parts += [(f"head:{name}", Head(loss)) for name, loss in LOSSES.items()]
    parts += [("head:model+float8", Head(None))]
    parts += [
        ("attention:model+bf16-residual", AttentionBlock(None)),
        ("mlp+bf16-residual", MLPBlock()),
    ]
    parts += [("head:model+bf16-residual", Head(next_token_loss))]
    if args.parts:
        parts = [(n, m) for n, m in parts if any(n.startswith(p) for p in args.parts)]
    results = []
    for name, module in parts:
        try:
            result = time_part(name, module, args.kernels)
        except Exception as err:  # a formulation this torch cannot compile: say so, go on
            result = {"part": name, "error": f"{type(err).__name__}: {err}"[:300]}
        results.append(result)
        if "error" in result:
            print(f"{name:<46} ERROR {result['error']}", flush=True)
            continue
        print(f"{name:<46} {result['ms']:7.3f} ms  (compile {result['compile_seconds']}s)")
        for kernel, ms in result["top_kernels_ms"]:
            print(f"    {ms:7.3f} ms  {kernel}", flush=True)
    by_part = {r["part"]: r["ms"] for r in results if "ms" in r}
    if {"attention:model", "mlp", "head:model"} <= by_part.keys():
        layer = by_part["attention:model"] + by_part["mlp"]
        micro = 12 * layer + by_part["head:model"]
        print(
            f"one micro-batch ~ 12 x {layer:.2f} + {by_part['head:model']:.2f} = {micro:.1f} ms "
            f"-> {MICRO * SEQ / micro * 1000:,.0f} tokens/s before embedding and optimizer"
        )
    if args.out:
        report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
        with open(args.out, "w") as f:
            json.dump({**report, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
