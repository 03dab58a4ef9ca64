"""Evaluation: `refinery eval --ckpt CKPT --mc FILE_OR_DIR ... [--shots K] [--bpb FILE ...]
[--out results.json]`.

Scores a checkpoint of any trainer (pretraining, anneal, SFT, DPO, a reward model: extra heads
are ignored) on multiple-choice benchmarks by log-likelihood and on held-out documents by
bits-per-byte, and prints the results as JSON::

    {"mc": {<file stem>: {"n", "acc", "acc_norm", "acc_stderr", "acc_norm_stderr", "shots",
                          "truncated", "choice_truncated" (items cut to the model's context),
                          "left_out": {<MMLU-Redux error type>: rows}}},
     "bpb": {<file>: bits per byte}, "perplexity": {<file>: per-token perplexity}, ...}

Without `../shared`, `--mc conf/eval/demo_mc.jsonl` is a small hand-written benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from refinery.cli import non_negative_int
from refinery.mc_data import read_benchmarks
from refinery.results import check_results_path, write_results
from training.evaluation.bpb import bits_per_byte, read_documents
from training.evaluation.loglik import resolve_device
from training.evaluation.mc import FEWSHOT_SEED, score_benchmark
from training.pretrained import load_pretrained
from training.train import console


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="refinery eval", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder (newest ckpt) or ckpt-<step>")
    parser.add_argument(
        "--mc",
        nargs="+",
        action="extend",
        default=[],
        help="benchmark files (.csv/.jsonl) or folders of them",
    )
    parser.add_argument(
        "--shots", type=int, default=0, help="few-shot examples per item (default 0)"
    )
    parser.add_argument(
        "--include-flawed",
        action="store_true",
        help="also score MMLU-Redux rows whose error_type is not 'ok'",
    )
    parser.add_argument(
        "--bpb",
        nargs="+",
        action="extend",
        default=[],
        help="text/JSONL/Parquet documents, or a folder of Parquet parts (a stage output)",
    )
    parser.add_argument("--out", help="also write the results JSON here")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="sequences per forward pass (default 8)"
    )
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda")
    parser.add_argument(
        "--seed", type=non_negative_int, default=FEWSHOT_SEED, help="few-shot selection seed"
    )
    args = parser.parse_args(argv)
    if not args.mc and not args.bpb:
        parser.error("nothing to evaluate: give --mc FILE_OR_DIR and/or --bpb FILE")
    if args.shots < 0 or args.batch_size < 1:
        parser.error("--shots must be >= 0 and --batch-size >= 1")
    if args.out:
        check_results_path(args.out, reads=[args.ckpt, *args.mc, *args.bpb])
    return args


def evaluate(args: argparse.Namespace, saved: list[str] | None = None) -> dict:
    """The results; `saved` gets each benchmark written to `--out` before the last one."""
    saved = [] if saved is None else saved
    # read every input before loading the model: a bad file fails in a second, not minutes
    left_out: dict = {}
    benchmarks = read_benchmarks(args.mc, args.include_flawed, left_out) if args.mc else {}
    documents = {path: read_documents(path) for path in args.bpb}
    loaded = load_pretrained(args.ckpt, resolve_device(args.device), accept_reward_model=True)
    tokenizer = loaded.tokenizer()
    results: dict = {"ckpt": str(loaded.path), "shots": args.shots}
    results.update(mc={}, bpb={}, perplexity={})
    pending = [*benchmarks, *documents]
    for name, items in benchmarks.items():
        flawed = left_out.get(name, {})
        note = f" ({sum(flawed.values())} flawed rows left out)" if flawed else ""
        say(f"{name}: {len(items):,} items{note}, {args.shots} shots ...")
        started = time.perf_counter()
        scores = score_benchmark(
            loaded.model, tokenizer, items, args.shots, args.batch_size, args.seed
        )
        if flawed:
            scores["left_out"] = dict(sorted(flawed.items()))
        results["mc"][name] = scores
        cut = f", {scores['truncated']} cut to the context" if scores["truncated"] else ""
        if scores["shots"] < args.shots:  # an item's examples are the benchmark's other items
            cut += f", {scores['shots']} of the {args.shots} shots asked (no more other items)"
        figures = f"acc {scores['acc']:.4f}, acc_norm {scores['acc_norm']:.4f}"
        say(f"{name}: {figures} (chance {scores['chance']:.4f}){cut}", started)
        save_progress(args.out, results, pending, name, saved)
    for path, texts in documents.items():
        say(f"{path}: bits per byte of {len(texts):,} documents ...")
        started = time.perf_counter()
        scores = bits_per_byte(loaded.model, tokenizer, texts, args.batch_size)
        results["bpb"][path] = scores["bpb"]
        results["perplexity"][path] = scores["perplexity"]
        say(f"{path}: {scores['bpb']:.4f} bits per byte", started)
        save_progress(args.out, results, pending, path, saved)
    return results


def save_progress(
    out: str | None, results: dict, pending: list[str], scored: str, saved: list[str]
) -> None:
    """Rewrite `--out` after each benchmark, naming those still `pending`: a run stopped after
    hours keeps what it scored. The last write leaves `pending` out (main writes the whole)."""
    pending.remove(scored)
    if out and pending:
        write_results(out, {**results, "pending": list(pending)})
        saved.append(scored)


def say(line: str, started: float | None = None) -> None:
    """Progress on stderr (stdout holds the results JSON): a long evaluation says where it is."""
    took = f" ({time.perf_counter() - started:.1f} s)" if started is not None else ""
    print(f"eval: {line}{took}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    saved: list[str] = []
    try:
        results = evaluate(args, saved)
    except KeyboardInterrupt:
        if saved:
            say(f"{args.out} holds the {len(saved)} scored before the stop (`pending`: the rest)")
        raise
    print(json.dumps(results, indent=2))
    if args.out:
        write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(console(main))
