"""Where a training step's GPU time goes: a bare compiled loop at the GPT-2-124M shape.

    python -m benchmarks.train_profile [--no-rope] [--micro 32] [--accum 4] [--top 8] [--out F]
        [--float8] [--float8-head] [--bf16-residual]

Forward/backward over 4 (--accum) micro-batches of 32 (--micro) x 1024 tokens with bf16 autocast,
gradient clipping and fused AdamW, exactly as the trainer does, without the trainer around it:
its tokens/s against `benchmarks/train_throughput.py` shows what the loop itself costs, and
the torch.profiler table of one step shows which kernels dominate, summed by kind (matmul,
attention, ... as their names say) and listed whole in `--out`, so that one device call
answers later questions too. `--no-rope` replaces RoPE by the identity, an upper bound for
what a faster RoPE kernel could gain; `--float8`, `--float8-head` and `--bf16-residual` are
`train.float8`, `train.float8_head` and `train.autocast_residual`. GPU only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

import training.model as model_module
from refinery.config import from_dict
from training.config import ModelConfig, TrainLoopConfig
from training.train import set_precision

# kind -> name fragments (lower case), first match wins. Inductor's kernels (triton_*) are
# named after the ops they fuse, `_scaled_mm` included, so they are sorted among themselves;
# cuDNN's attention kernels also say sm90, so attention is tried before matmul.
TRITON_KINDS = {
    "loss": ("logsumexp", "softmax", "cross_entropy", "nll"),
    "norm": ("rms_norm", "rsqrt"),
    "triton pointwise": ("triton_poi",),
    "triton reduction": ("triton_red", "triton_per"),
}
LIBRARY_KINDS = {
    "attention": ("sdpa", "flash", "fmha"),
    "matmul": ("nvjet", "gemm", "cutlass", "xmma"),
    "optimizer and clipping": ("adam", "multi_tensor", "lpnorm"),
    "copy": ("memcpy", "memset", "copy"),
}


def kind(kernel: str) -> str:
    name = kernel.lower()
    kinds = TRITON_KINDS if name.startswith("triton") else LIBRARY_KINDS
    return next((k for k, parts in kinds.items() if any(p in name for p in parts)), "other")


def by_kind(kernels: list[dict]) -> dict[str, float]:
    """ms per kind, largest first."""
    totals: dict[str, float] = {}
    for kernel in kernels:
        name = kind(kernel["name"])
        totals[name] = totals.get(name, 0.0) + kernel["ms"]
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


SHAPE = dict(vocab_size=50304, d_model=768, n_layers=12, n_heads=12, seq_len=1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-rope", action="store_true", help="identity instead of RoPE")
    parser.add_argument("--top", type=int, default=8, help="kernels to list")
    parser.add_argument("--out", help="JSON file: tokens/s and every kernel of one step")
    parser.add_argument("--micro", type=int, default=32, help="sequences per micro-batch")
    parser.add_argument("--accum", type=int, default=4, help="micro-batches per step")
    parser.add_argument("--float8", action="store_true", help="train.float8")
    parser.add_argument("--float8-head", action="store_true", help="train.float8_head")
    parser.add_argument("--bf16-residual", action="store_true", help="train.autocast_residual")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 2
    if args.no_rope:
        model_module.apply_rope = lambda x, cos, sin: x
    torch.manual_seed(0)
    model = model_module.Transformer(from_dict(ModelConfig, SHAPE)).cuda()
    precision = TrainLoopConfig(
        float8=args.float8, float8_head=args.float8_head, autocast_residual=args.bf16_residual
    )
    set_precision(model, precision, torch.device("cuda"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    runner = torch.compile(model)
    accum = args.accum
    tokens = torch.randint(0, SHAPE["vocab_size"], (accum, args.micro, SHAPE["seq_len"] + 1))
    tokens = tokens.cuda()

    def step() -> None:
        for micro in range(accum):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = runner(tokens[micro, :, :-1], tokens[micro, :, 1:])
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()  # the trainer's sync
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(4):  # compile and warm up
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(8):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / 8
    tokens_per_s = args.micro * accum * SHAPE["seq_len"] / seconds
    print(f"{tokens_per_s:,.0f} tokens/s, {1000 * seconds:.1f} ms/step")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        step()
        torch.cuda.synchronize()
    events = sorted(profile.key_averages(), key=lambda e: -e.self_device_time_total)
    kernels = [
        {"name": e.key, "ms": e.self_device_time_total / 1000, "calls": e.count}
        for e in events
        if e.self_device_time_total > 0
    ]
    step_ms = sum(k["ms"] for k in kernels)
    print(f"one step's kernels: {step_ms:.1f} ms")
    for name, ms in by_kind(kernels).items():
        print(f"  {ms:7.1f} ms  {100 * ms / step_ms:5.1f}%  {name}")
    for kernel in kernels[: args.top]:
        print(f"  {kernel['ms']:7.1f} ms  x{kernel['calls']:<4} {kernel['name'][:100]}")
    if args.out:
        report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
        report |= {"tokens_per_s": tokens_per_s, "step_ms": 1000 * seconds, "kernels": kernels}
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
