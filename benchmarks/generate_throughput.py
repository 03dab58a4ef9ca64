"""Generation tokens/s with and without the KV cache, random weights, on this machine's device.

    python benchmarks/generate_throughput.py [--preset tiny|gpt2-124m] [--batch 1 8]
        [--prompt-len 16] [--new-tokens 48] [--seq-len N] [--threads N]

The model is the architecture of conf/train/<preset>.yaml (random weights: speed does not depend
on what was learnt; vocab 384 for tiny, as the test tokenizer, 50,304 for GPT-2). Greedy
decoding without stop tokens, so every run emits exactly `new-tokens` tokens per sequence.
Tokens/s counts generated tokens (batch x new tokens) over wall time, prefill included. Without
the cache each step recomputes the whole prefix, so its cost grows with the length generated.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from refinery.config import from_dict, read_yaml  # noqa: E402
from training.config import ModelConfig  # noqa: E402
from training.generate import generate  # noqa: E402
from training.model import Transformer  # noqa: E402

VOCAB = {"tiny": 384, "gpt2-124m": 50304}


def build(preset: str, device: torch.device, seq_len: int = 0) -> Transformer:
    shape = read_yaml(REPO / "conf" / "train" / f"{preset}.yaml")["model"]
    shape = {**shape, "vocab_size": VOCAB[preset], **({"seq_len": seq_len} if seq_len else {})}
    cfg = from_dict(ModelConfig, shape)
    torch.manual_seed(0)
    return Transformer(cfg).to(device).eval()


def tokens_per_second(model, prompts, new_tokens: int, use_cache: bool, repeats: int) -> float:
    generate(model, prompts, 2, temperature=0, stop_ids=(), use_cache=use_cache)  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = generate(model, prompts, new_tokens, temperature=0, stop_ids=(), use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
        assert sum(map(len, out)) == len(prompts) * new_tokens
    return len(prompts) * new_tokens / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(VOCAB), default="tiny")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--seq-len", type=int, default=0, help="context; 0: the preset's")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timed runs")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: default")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build(args.preset, device, args.seq_len)
    cfg = model.cfg
    if args.prompt_len + args.new_tokens > cfg.seq_len:
        raise SystemExit(f"prompt-len + new-tokens exceeds seq_len {cfg.seq_len}")
    print(
        f"{args.preset}: d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads "
        f"({cfg.n_kv_heads or cfg.n_heads} kv), seq_len {cfg.seq_len}, "
        f"{model.num_params() / 1e6:.1f}M params; "
        f"device {device}, {torch.get_num_threads()} threads; prompt {args.prompt_len} tokens, "
        f"{args.new_tokens} new tokens, greedy, best of {args.repeats}"
    )
    print("batch  cached tok/s  uncached tok/s  speed-up")
    gen = torch.Generator().manual_seed(0)
    for batch in args.batch:
        prompts = torch.randint(7, cfg.vocab_size, (batch, args.prompt_len), generator=gen)
        prompts = prompts.tolist()
        cached = tokens_per_second(model, prompts, args.new_tokens, True, args.repeats)
        uncached = tokens_per_second(model, prompts, args.new_tokens, False, args.repeats)
        print(f"{batch:5d}  {cached:12.1f}  {uncached:14.1f}  {cached / uncached:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
