"""Training throughput on one GPU: tokens/s, MFU, peak memory and data-wait fraction.

    python -m benchmarks.train_throughput --out h200.json
    python -m benchmarks.train_throughput --smoke --out /tmp/smoke.json   # CPU, tiny shapes

Runs every configuration of issue 7 in one process through the real trainer (`training.train.
run`) on random-token shards written with `refinery.shards` into a temp folder: GPT-2-124M
shape eager and compiled in its preset's mode (coordinate-descent), 350M compiled at its
preset's micro-batch 32, and a ~1B model for 20 steps of 16K tokens; then, while `--budget`
lasts, that 1B model with activation checkpointing (`train.activation_checkpointing`), 124M
with the float8 head (`train.float8_head`) and a bf16 residual stream
(`train.autocast_residual`), alone and together, also at the preset's 0.5M-token step; the
124M and 1B presets' micro-batch and compile mode, 350M with `train.float8` and
`train.float8_head`, and other compile modes, batches and float8 cases.
`--only NAME ...` runs those cases in this order; the first four of them always run, the rest
while the budget lasts. Figures are averaged over the steps after `warmup` (compilation,
autotuning). MFU uses
6N + 12*L*H*Q*T FLOPs per token against 989 TFLOP/s (H100 and H200 SXM bf16 dense; float8
cases too). A case that fails is recorded with its error and the others still run. Needs
only torch and numpy.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from refinery.config import from_dict
from training.config import TrainConfig
from training.model import Transformer
from training.synthetic import write_dataset
from training.train import run

VOCAB = 50304


@dataclass
class Case:
    name: str
    model: dict
    micro_batch: int
    accum: int
    steps: int
    warmup: int
    compile: bool
    compile_mode: str = "default"  # train.compile_mode
    seconds: float = 40  # rough cost on an H200, to skip extras that would overrun the budget
    extra: dict = field(default_factory=dict)


GPT2_124M = dict(d_model=768, n_layers=12, n_heads=12, seq_len=1024)
M350 = dict(d_model=1024, n_layers=24, n_heads=16, seq_len=1024)
B1 = dict(  # conf/train/1b.yaml's model
    d_model=2048,
    n_layers=18,
    n_heads=16,
    n_kv_heads=8,
    seq_len=2048,
    qk_norm=True,
    tie_embeddings=False,
    rope_theta=500000.0,
)


FLOAT8_ALL = {"float8": True, "float8_head": True}  # the blocks' linears and the LM head
FLOAT8_HEAD = {"float8_head": True}
BF16_RESIDUAL = {"autocast_residual": True}
FAST = FLOAT8_HEAD | BF16_RESIDUAL
RECOMPUTE = {"activation_checkpointing": True}


def compiled(name: str, model: dict, micro: int, accum: int, **extra) -> Case:
    """A compiled case: 15 steps, the first 4 (compilation, autotuning) not measured."""
    return Case(name, model, micro, accum, steps=15, warmup=4, compile=True, **extra)


def eager(name: str, model: dict, micro: int, accum: int, steps: int, warmup: int, **extra):
    """An uncompiled case of `steps`, the first `warmup` not measured."""
    return Case(name, model, micro, accum, steps=steps, warmup=warmup, compile=False, **extra)


GPU_CASES = [
    # the four the targets need, in their presets' settings (124M at the nanoGPT comparison's
    # batch 32), then extras while the budget lasts: first what no session has measured yet,
    # then the float8 and mode comparisons an earlier table already holds
    eager("gpt2-124m-eager", GPT2_124M, 32, 4, steps=12, warmup=3),
    compiled(
        "gpt2-124m-coordinate-descent",
        GPT2_124M,
        32,
        4,
        compile_mode="coordinate-descent",
        seconds=90,
    ),
    compiled("350m-compiled", M350, 32, 2, seconds=60),
    eager("1b-eager", B1, 4, 2, steps=20, warmup=3),
    # the same 1B steps recomputing each block in the backward: the memory it saves, the time
    # it costs; then 4x the micro-batch in one pass
    eager("1b-eager-checkpointing", B1, 4, 2, steps=20, warmup=3, extra=RECOMPUTE),
    eager("1b-eager-checkpointing-b16", B1, 16, 1, steps=10, warmup=3, extra=RECOMPUTE),
    # 124M at micro-batch 64 in default mode: the float8 head (projection and loss fused) and
    # the bf16 residual stream alone and together, then at the preset's 0.5M-token step
    compiled("gpt2-124m-compiled-b64", GPT2_124M, 64, 2),
    compiled("gpt2-124m-float8-head-b64", GPT2_124M, 64, 2, extra=FLOAT8_HEAD, seconds=50),
    compiled("gpt2-124m-bf16-residual-b64", GPT2_124M, 64, 2, extra=BF16_RESIDUAL),
    compiled("gpt2-124m-float8-head-bf16-residual-b64", GPT2_124M, 64, 2, extra=FAST, seconds=50),
    # the head's gradient rounded stochastically (train.float8_head_rounding): its cost
    compiled(
        "gpt2-124m-float8-head-stochastic-bf16-residual-b64",
        GPT2_124M,
        64,
        2,
        extra=FAST | {"float8_head_rounding": "stochastic"},
        seconds=50,
    ),
    compiled("gpt2-124m-b64x8", GPT2_124M, 64, 8, seconds=50),
    compiled("gpt2-124m-float8-head-bf16-residual-b64x8", GPT2_124M, 64, 8, extra=FAST, seconds=60),
    compiled(  # the gpt2-124m preset's micro-batch and mode, at 2 micro-batches a step, not 8
        "gpt2-124m-coordinate-descent-b64",
        GPT2_124M,
        64,
        2,
        compile_mode="coordinate-descent",
        seconds=90,
    ),
    compiled("1b-compiled", B1, 8, 1, seconds=120),  # the 1b preset's micro-batch, one rank
    compiled("350m-float8-head", M350, 32, 2, extra=FLOAT8_ALL, seconds=120),
    compiled(
        "350m-float8-head-bf16-residual", M350, 32, 2, extra=FLOAT8_ALL | BF16_RESIDUAL, seconds=120
    ),
    compiled("gpt2-124m-compiled-b128", GPT2_124M, 128, 1, seconds=50),  # ~62 GiB
    compiled("gpt2-124m-max-autotune", GPT2_124M, 32, 4, compile_mode="max-autotune", seconds=300),
    compiled(
        "350m-coordinate-descent", M350, 32, 2, compile_mode="coordinate-descent", seconds=120
    ),
    compiled("350m-float8", M350, 32, 2, extra={"float8": True}, seconds=120),
    compiled("gpt2-124m-float8-all-b64", GPT2_124M, 64, 2, extra=FLOAT8_ALL, seconds=60),
    compiled("350m-compiled-b16", M350, 16, 4, seconds=70),
    eager("350m-eager", M350, 16, 4, steps=10, warmup=3, seconds=10),
    compiled("gpt2-124m-compiled", GPT2_124M, 32, 4),
]
TINY = dict(d_model=64, n_layers=2, n_heads=4, seq_len=64)
SMOKE_CASES = [
    # no autocast on CPU: autocast_residual goes through the config and changes nothing
    eager("tiny-eager", TINY, 4, 2, steps=5, warmup=1, extra={"autocast_residual": True}),
    eager("tiny-float8", TINY, 4, 2, steps=4, warmup=1, extra=FLOAT8_ALL),
    eager("tiny-moe", {**TINY, "moe": {"num_experts": 4}}, 4, 1, steps=4, warmup=1),
    eager("tiny-checkpointing", TINY, 4, 2, steps=4, warmup=1, extra=RECOMPUTE),
]


def make_config(case: Case, data: Path, out: Path) -> TrainConfig:
    seq_len = case.model["seq_len"]
    return from_dict(
        TrainConfig,
        {
            "data": str(data),
            "out": str(out),
            "max_steps": case.steps,
            "seed": 0,
            "ckpt_every": 0,
            "model": {"vocab_size": VOCAB, **case.model},
            "optim": {"lr": 3e-4},
            "schedule": {"kind": "constant", "warmup_steps": 0},
            "train": {
                "global_batch_tokens": case.micro_batch * case.accum * seq_len,
                "micro_batch": case.micro_batch,
                "compile": case.compile,
                "compile_mode": case.compile_mode,
                "save_final": False,
                "eval_tokens": 0,
                "tensorboard": False,
                "progress": False,
                "spike": {"zscore": 0.0},
                **case.extra,
            },
        },
    )


def summarize(case: Case, rows: list[dict], seconds: float) -> dict:
    measured = rows[case.warmup :]
    step_seconds = sum(r["step_seconds"] for r in measured)
    tokens = sum(r["tokens_per_s"] * r["step_seconds"] for r in measured)
    wait = sum(r["data_wait"] * r["step_seconds"] for r in measured)
    mfu = sum(r["mfu"] * r["step_seconds"] for r in measured)
    return {
        "name": case.name,
        "compile": case.compile_mode if case.compile else False,
        "float8": case.extra.get("float8", False),
        "float8_head": case.extra.get("float8_head", False),
        "float8_head_rounding": case.extra.get("float8_head_rounding", "nearest"),
        "autocast_residual": case.extra.get("autocast_residual", False),
        "activation_checkpointing": case.extra.get("activation_checkpointing", False),
        "tokens_per_step": case.micro_batch * case.accum * case.model["seq_len"],
        "steps_measured": len(measured),
        "tokens_per_s": tokens / step_seconds,
        "mfu": mfu / step_seconds,
        "data_wait_fraction": wait / step_seconds,
        "peak_mem_gib": max((r.get("peak_mem_gib", 0.0) for r in rows), default=0.0),
        "final_loss": rows[-1]["loss"],
        "wall_seconds": seconds,
    }


def run_case(case: Case, data: Path, work: Path) -> dict:
    out = work / case.name
    cfg = make_config(case, data, out)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run(cfg)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    result = summarize(case, rows, time.perf_counter() - started)
    with torch.device("meta"):
        model = Transformer(cfg.model)
    result["params"] = model.num_params()
    result["flops_per_token"] = model.flops_per_token()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, a few steps")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--budget", type=float, default=540, help="seconds for all cases")
    args = parser.parse_args(argv)
    cases = SMOKE_CASES if args.smoke else GPU_CASES
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in cases})
        if unknown:  # a typo must not cost a device session its case
            known = ", ".join(c.name for c in cases)
            print(f"unknown case {', '.join(unknown)}; the cases: {known}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c.name in args.only]
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA device: use --smoke for a CPU check", file=sys.stderr)
        return 2
    if not args.smoke:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    started = time.perf_counter()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    report = {"device": device, "torch": torch.__version__, "peak_tflops": 989.0, "results": []}
    with tempfile.TemporaryDirectory(prefix="refinery-bench-") as tmp:
        work = Path(tmp)
        need = max(c.steps * c.micro_batch * c.accum * c.model["seq_len"] for c in cases)
        data = work / "tokens"
        write_dataset(
            data,
            {"random": max(need // 4, 50_000)},
            vocab_size=VOCAB,
            validation_tokens=10_000,
            max_epochs=1000.0,
        )
        print(f"{device}: random-token shards written in {time.perf_counter() - started:.1f}s")
        for i, case in enumerate(cases):
            elapsed = time.perf_counter() - started
            if i >= 4 and elapsed + case.seconds > args.budget:
                print(f"skip {case.name}: {elapsed:.0f}s used of the {args.budget:.0f}s budget")
                continue
            try:
                result = run_case(case, data, work)
            except torch.cuda.OutOfMemoryError as err:
                result = {"name": case.name, "error": f"out of memory: {err}"[:500]}
            except Exception as err:  # one failing case must not cost the others' device time
                result = {"name": case.name, "error": f"{type(err).__name__}: {err}"[:500]}
            report["results"].append(result)
            print(format_result(result), flush=True)
            torch._dynamo.reset()
            gc.collect()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # after every case
    report["total_seconds"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {report['total_seconds']:.0f}s; results in {args.out}")
    return 0


def format_result(r: dict) -> str:
    if "error" in r:
        return f"{r['name']:<24} ERROR {r['error']}"
    return (
        f"{r['name']:<24} {r['params'] / 1e6:7.1f}M params  {r['tokens_per_s']:>10,.0f} tok/s  "
        f"MFU {100 * r['mfu']:5.1f}%  peak {r['peak_mem_gib']:6.2f} GiB  "
        f"data wait {100 * r['data_wait_fraction']:4.2f}%  "
        f"{r['tokens_per_step']:,} tok/step  loss {r['final_loss']:.3f}  "
        f"({r['wall_seconds']:.0f}s)"
    )


if __name__ == "__main__":
    sys.exit(main())
