"""Where a training step's GPU time goes: a bare compiled loop at the GPT-2-124M shape.

    python -m benchmarks.train_profile [--no-rope] [--top 8]

Forward/backward over 4 micro-batches of 32 x 1024 tokens with bf16 autocast, gradient
clipping and fused AdamW, exactly as the trainer does, but without the trainer around it:
its tokens/s against `benchmarks/train_throughput.py` shows what the loop itself costs, and
the torch.profiler table of one step shows which kernels dominate. `--no-rope` replaces
RoPE by the identity, an upper bound for what a faster RoPE kernel could gain. GPU only.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import training.model as model_module
from refinery.config import from_dict
from training.config import ModelConfig

SHAPE = dict(vocab_size=50304, d_model=768, n_layers=12, n_heads=12, seq_len=1024)
MICRO, ACCUM = 32, 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-rope", action="store_true", help="identity instead of RoPE")
    parser.add_argument("--top", type=int, default=8, help="kernels to list")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 2
    if args.no_rope:
        model_module.apply_rope = lambda x, cos, sin: x
    torch.manual_seed(0)
    model = model_module.Transformer(from_dict(ModelConfig, SHAPE)).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    runner = torch.compile(model)
    tokens = torch.randint(0, SHAPE["vocab_size"], (ACCUM, MICRO, SHAPE["seq_len"] + 1)).cuda()

    def step() -> None:
        for micro in range(ACCUM):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = runner(tokens[micro, :, :-1], tokens[micro, :, 1:])
            (loss / ACCUM).backward()
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
    tokens_per_s = MICRO * ACCUM * SHAPE["seq_len"] / seconds
    print(f"{tokens_per_s:,.0f} tokens/s, {1000 * seconds:.1f} ms/step")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        step()
        torch.cuda.synchronize()
    events = sorted(profile.key_averages(), key=lambda e: -e.self_device_time_total)
    for event in events[: args.top]:
        print(f"  {event.self_device_time_total / 1000:7.1f} ms  {event.key[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
