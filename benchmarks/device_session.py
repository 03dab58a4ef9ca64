"""What the next lent GPU should run, as named parts, so a fresh checkout needs no notes.

    python -m benchmarks.device_session prepare           # here, needs ../shared/data
    python -m benchmarks.device_session run checks parity-stochastic --out $OUT   # device call 1
    python -m benchmarks.device_session run parity-nearest throughput --out $OUT  # device call 2
    python -m benchmarks.device_session run ... --dry-run  # print the commands only

`prepare` builds `.device/tokens8k` (ignored by git): the 8,192-token BPE tokens of
../shared/data's text that the GPU parity runs train on, since the device machine cannot see
../shared. Device calls carry it (`carry: [".device"]`). Each part runs as a subprocess under
its own time limit, its output in `$OUT/<part>.log` (the last lines on stdout); a part that
fails or runs out of time is reported and the next one still runs. A call stays under 600 s:
`checks` and a parity part should take 2-3 minutes each on an H200 (estimates: no machine has
run them yet), `throughput` its `--budget`. A session's 15 device minutes include the
machine's start, so they rarely hold all four parts: the order above is by value, and a
second call made at once finds the machine still warm (the same GPU for both halves of the
parity A/B); run `throughput` only with time to spare.

The parts (docs/BENCHMARKS.md, "Training throughput", says what each answers):
- `checks`: `pytest -m gpu tests/training/test_device.py`, every CUDA path against the CPU.
- `parity-stochastic`, `parity-nearest`: the 124M shape with the float8 head against bf16,
  three seeds, the head's gradient rounded either way: is seed 0's slower loss (+0.24/+0.31
  in the third session) the bias of rounding to nearest, which stochastic rounding removes?
- `throughput`: the `train_throughput` cases no machine has run yet, then the 124M fast pair
  at the preset's 0.5M-token step.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENS = ROOT / ".device" / "tokens8k"
PYTHON = sys.executable
TAIL_LINES = 80  # a 3-seed parity log's tables and summary

# The third session's GPU parity run (docs/BENCHMARKS.md, "Does it train as well?"): the 124M
# shape on an 8,192-entry vocabulary, 400 eager steps of 8 x 1024 tokens.
PARITY_SHAPE = [
    "model.d_model=768",
    "model.n_layers=12",
    "model.n_heads=12",
    "model.n_kv_heads=12",
    "model.qk_norm=false",
    "model.seq_len=1024",
    "optim.lr=6e-4",
    "schedule.warmup_steps=40",
    "max_steps=400",
    "train.global_batch_tokens=8192",
    "train.micro_batch=8",
    "train.compile=false",
    "train.eval_tokens=65536",
]
THROUGHPUT_CASES = [
    "1b-eager-checkpointing",
    "1b-eager-checkpointing-b16",
    "gpt2-124m-float8-head-stochastic-bf16-residual-b64",
    "gpt2-124m-b64x8",
    "gpt2-124m-float8-head-bf16-residual-b64x8",
]


def parity(rounding: str, out: Path) -> list[str]:
    """float8_parity: bf16 against the float8 head rounding its gradient `rounding`. The runs'
    checkpoints (1.1 GB each at this shape) stay outside $OUT, which gets parity.json."""
    candidate = ["train.float8_head=true", f"train.float8_head_rounding={rounding}"]
    command = [PYTHON, "-m", "benchmarks.float8_parity", "--out", str(out / f"parity-{rounding}")]
    command += ["--runs", f"/tmp/refinery-parity-{rounding}"]
    command += ["--tokens", str(TOKENS), "--seeds", "0,1,2", "--window", "50"]
    for setting in candidate:
        command += ["--candidate", setting]
    return command + PARITY_SHAPE


def parts(out: Path) -> dict[str, tuple[list[str], int]]:
    """Each part's command and time limit in seconds."""
    checks = [PYTHON, "-m", "pytest", "-m", "gpu", "-q", "tests/training/test_device.py"]
    throughput = [
        PYTHON,
        "-m",
        "benchmarks.train_throughput",
        "--out",
        str(out / "throughput.json"),
    ]
    return {
        "checks": (checks, 280),
        "parity-stochastic": (parity("stochastic", out), 260),
        "parity-nearest": (parity("nearest", out), 260),
        "throughput": ([*throughput, "--budget", "240", "--only", *THROUGHPUT_CASES], 300),
    }


def prepare() -> int:
    """Build the parity runs' tokens folder from ../shared/data."""
    from benchmarks.scaling_sweep import build_tokens

    build_tokens(TOKENS, vocab_size=8192)
    return 0


def run(names: list[str], out: Path, dry_run: bool) -> int:
    """Run the named parts in order; 1 when any failed or timed out."""
    available = parts(out)
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"unknown part {', '.join(unknown)}; parts: {', '.join(available)}", file=sys.stderr)
        return 2
    wants_tokens = any(name.startswith("parity") for name in names)
    if wants_tokens and not dry_run and not (TOKENS / "manifest.json").is_file():
        print(f"{TOKENS} is missing: run `prepare` here and carry .device", file=sys.stderr)
        return 2
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        command, limit = available[name]
        print(f"== {name} (limit {limit} s): {shlex.join(command)}", flush=True)
        if dry_run:
            continue
        started = time.perf_counter()
        status = run_logged(command, limit, out / f"{name}.log")
        print(f"== {name}: {status} after {time.perf_counter() - started:.0f} s", flush=True)
        if status != "ok":
            failed.append(name)
    return 1 if failed else 0


def run_logged(command: list[str], limit: int, log: Path) -> str:
    """Run `command` from the repository root into `log`, unbuffered, killing its process
    group at `limit` seconds; print the log's last lines (the device tool returns only the
    output's tail). The group stays in the caller's session, so the device tool's own timeout
    ends it too (a new session would run on, holding the GPU)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, process_group=0
        )
        try:
            status = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
    print("".join(log.read_text().splitlines(keepends=True)[-TAIL_LINES:]), end="")
    if status is None:
        return f"timed out at {limit} s"
    return "ok" if status == 0 else f"failed with status {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="build .device/tokens8k from ../shared/data")
    running = commands.add_parser("run", help="run parts in order")
    running.add_argument("parts", nargs="+", help="checks, parity-stochastic, parity-nearest, …")
    running.add_argument("--out", default=os.environ.get("OUT", "device-results"))
    running.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return prepare()
    return run(args.parts, Path(args.out).resolve(), args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
