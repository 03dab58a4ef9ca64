"""GPU time of one layer's parts at the GPT-2-124M shape, and RoPE / SDPA variants A/B'd.

    python -m benchmarks.block_timing [--out results.json] [--kernels 4]
    python -m benchmarks.block_timing --check        # CPU: every variant matches the model's

Each part is compiled on its own (default mode), run forward and backward under bf16 autocast
at micro-batch 32 x 1024, and timed with CUDA events: the attention block (QKV projection,
RoPE, SDPA, output projection) in each formulation of `ATTENTION`, the SwiGLU block and the
LM head with its loss. 12 x (attention + MLP) + head is about one micro-batch of the model,
so the table says where a step's time goes and what a RoPE formulation is worth before it is
tried in the whole trainer. The top kernels of each part are listed from torch.profiler.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from training.config import ModelConfig
from training.model import Attention, RMSNorm, apply_rope, rope_tables

VOCAB, D_MODEL, HEADS, SEQ, MICRO = 50304, 768, 12, 1024, 32
HEAD_DIM = D_MODEL // HEADS


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """`apply_rope`'s rotation with cos/sin broadcast by the caller (any layout)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).type_as(x)


class Rotation(torch.autograd.Function):
    """RoPE with its backward written out: the transpose of a rotation is the rotation by the
    opposite angle, one pointwise kernel instead of autograd's slices, products and cat."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return rotate(x, cos, sin)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return rotate(grad, cos, -sin), None, None


# Each formulation maps the fused QKV projection (B, T, 3C) of a multi-head layer (no grouped
# queries, no QK-norm), with cos/sin (T, D/2), to the attention output (B, T, C).


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


def model_layout(qkv, cos, sin, n_heads):  # training.model.Attention.forward, as it is
    q, k, v = bhtd(*heads(qkv, n_heads))
    return causal(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)


def rope_before_transpose(qkv, cos, sin, n_heads):
    q, k, v = heads(qkv, n_heads)
    c, s = cos[:, None], sin[:, None]  # (T, 1, D/2) over (B, T, H, D/2)
    return causal(*bhtd(rotate(q, c, s), rotate(k, c, s), v))


def rotation_function(qkv, cos, sin, n_heads):
    q, k, v = bhtd(*heads(qkv, n_heads))
    return causal(Rotation.apply(q, cos, sin), Rotation.apply(k, cos, sin), v)


def rotation_function_before_transpose(qkv, cos, sin, n_heads):
    q, k, v = heads(qkv, n_heads)
    c, s = cos[:, None], sin[:, None]
    return causal(*bhtd(Rotation.apply(q, c, s), Rotation.apply(k, c, s), v))


def rotate_qk_together(qkv, cos, sin, n_heads):
    """One rotation over q and k as (B, T, 2H, D): one kernel each way instead of two."""
    B, T, three_c = qkv.shape
    c = three_c // 3
    qk = qkv[..., : 2 * c].view(B, T, 2 * n_heads, -1)
    q, k = Rotation.apply(qk, cos[:, None], sin[:, None]).split(n_heads, dim=2)
    v = qkv[..., 2 * c :].view(B, T, n_heads, -1)
    return causal(*bhtd(q, k, v))


def without_rope(qkv, cos, sin, n_heads):  # the bound: what no RoPE cost at all would give
    return causal(*bhtd(*heads(qkv, n_heads)))


# name -> (formulation, SDPA backend or None for PyTorch's choice)
ATTENTION: dict[str, tuple[Callable, SDPBackend | None]] = {
    "model": (model_layout, None),
    "model-flash": (model_layout, SDPBackend.FLASH_ATTENTION),
    "model-cudnn": (model_layout, SDPBackend.CUDNN_ATTENTION),
    "rope-before-transpose": (rope_before_transpose, None),
    "rotation-function": (rotation_function, None),
    "rotation-function-before-transpose": (rotation_function_before_transpose, None),
    "rotate-qk-together": (rotate_qk_together, None),
    "no-rope": (without_rope, None),
}


class AttentionBlock(nn.Module):
    def __init__(self, formulation: Callable):
        super().__init__()
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL, bias=False)
        self.out = nn.Linear(D_MODEL, D_MODEL, bias=False)
        self.formulation = formulation
        cos, sin = rope_tables(HEAD_DIM, SEQ, 10000.0)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x):
        qkv = self.qkv(self.norm(x))
        return x + self.out(self.formulation(qkv, self.cos, self.sin, HEADS))


class MLPBlock(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = 64 * -(-8 * D_MODEL // 3 // 64)  # training.model.resolved_ffn_hidden
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.gate_up = nn.Linear(D_MODEL, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, D_MODEL, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(self.norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RMSNorm(D_MODEL, 1e-5)
        self.embed = nn.Embedding(VOCAB, D_MODEL)

    def forward(self, x, targets):
        logits = F.linear(self.norm(x), self.embed.weight)
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.reshape(-1))


def time_part(name: str, module: nn.Module, backend: SDPBackend | None, kernels: int) -> dict:
    """Mean ms of forward + backward over 20 iterations after 3 warm-ups, and top kernels."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    module = module.cuda()
    x = torch.randn(MICRO, SEQ, D_MODEL, device="cuda", requires_grad=True)
    targets = torch.randint(0, VOCAB, (MICRO, SEQ), device="cuda")
    compiled = torch.compile(module)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = compiled(x, targets) if isinstance(module, Head) else compiled(x)
        out.backward(torch.ones_like(out))  # a block's output gradient: ones

    context = sdpa_kernel([backend]) if backend else contextlib.nullcontext()
    started = time.perf_counter()
    with context:
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
    top = [[e.key[:90], round(e.self_device_time_total / 1000, 3)] for e in events[:kernels]]
    return {
        "part": name,
        "ms": start.elapsed_time(end) / 20,
        "compile_seconds": round(compile_seconds, 1),
        "top_kernels_ms": top,
    }


def check() -> int:
    """Every attention formulation gives the model's output and input gradient (fp64, CPU)."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, d_model=D_MODEL, n_heads=HEADS, seq_len=SEQ)
    attention = Attention(cfg).double()
    cos, sin = (t.double() for t in rope_tables(HEAD_DIM, SEQ, 10000.0))
    x = torch.randn(2, SEQ, D_MODEL, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, SEQ, D_MODEL, dtype=torch.float64)
    (attention(x, cos, sin) * weights).sum().backward()
    reference = (attention(x, cos, sin).detach(), x.grad)
    for name, (formulation, _) in ATTENTION.items():
        if name == "no-rope":
            continue
        x.grad = None
        y = attention.out(formulation(attention.qkv(x), cos, sin, HEADS))
        (y * weights).sum().backward()
        same = torch.allclose(y, reference[0]) and torch.allclose(x.grad, reference[1])
        print(f"{name:<36} {'matches' if same else 'DIFFERS'}")
        if not same:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument("--kernels", type=int, default=4, help="top kernels listed per part")
    parser.add_argument("--check", action="store_true", help="CPU equivalence of the variants")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    if not torch.cuda.is_available():
        print("needs a CUDA device (or --check)", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    parts = [(f"attention:{n}", AttentionBlock(f), b) for n, (f, b) in ATTENTION.items()]
    parts += [("mlp", MLPBlock(), None), ("head+loss", Head(), None)]
    results = []
    for name, module, backend in parts:
        try:
            result = time_part(name, module, backend, args.kernels)
        except Exception as err:  # a backend this GPU or torch lacks: say so, go on
            result = {"part": name, "error": f"{type(err).__name__}: {err}"[:300]}
        results.append(result)
        if "error" in result:
            print(f"{name:<46} ERROR {result['error']}", flush=True)
            continue
        print(f"{name:<46} {result['ms']:7.3f} ms  (compile {result['compile_seconds']}s)")
        for kernel, ms in result["top_kernels_ms"]:
            print(f"    {ms:7.3f} ms  {kernel}", flush=True)
    by_part = {r["part"]: r["ms"] for r in results if "ms" in r}
    if {"attention:model", "mlp", "head+loss"} <= by_part.keys():
        layer = by_part["attention:model"] + by_part["mlp"]
        micro = 12 * layer + by_part["head+loss"]
        print(
            f"one micro-batch ~ 12 x {layer:.2f} + {by_part['head+loss']:.2f} = {micro:.1f} ms "
            f"-> {MICRO * SEQ / micro * 1000:,.0f} tokens/s before embedding and optimizer"
        )
    if args.out:
        report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
        with open(args.out, "w") as f:
            json.dump({**report, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
