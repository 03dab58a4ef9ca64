"""`refinery <command> ...`: one console script, each command a module with `main(argv)`.

Commands are imported lazily so `refinery train` never loads pyspark and
`refinery extract` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from refinery.errors import with_user_errors

# command -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sample-crawl": (
        "curation.sample_crawl",
        "write a deterministic synthetic crawl of .warc.gz files",
    ),
    "extract": ("jobs.extract", "WARC/ARC/WET -> documents Parquet (Spark)"),
    "filter": ("jobs.filter", "documents -> blocklist, language, bad words, ... filters (Spark)"),
    "dedup": ("jobs.dedup", "URL, exact and MinHash near-duplicate removal (Spark)"),
    "train-quality": (
        "curation.quality_training",
        "train the fastText quality classifier (Wikipedia-reference positives vs crawl)",
    ),
    "classify": ("jobs.classify", "documents -> quality score, keep rule, domain label (Spark)"),
    "mix": ("jobs.mix", "documents -> mixture buckets + pretrain/anneal weights (Spark)"),
    "train-tokenizer": (
        "jobs.train_tokenizer",
        "train the byte-level BPE tokenizer on a sample of documents (Spark)",
    ),
    "tokenize": ("jobs.tokenize", "documents -> token shards + manifest.json (Spark)"),
    "inspect-shards": ("refinery.inspect_shards", "verify and summarise a tokens folder"),
    "curate": ("jobs.pipeline", "run every curation stage in order (Spark)"),
    "train": ("training.train", "pretrain a language model on token shards (torch)"),
    "anneal": ("training.anneal", "continue a checkpoint with LR decay to zero on a mixture"),
    "sft": ("training.sft", "supervised fine-tuning on chat data, loss on assistant turns only"),
    "rm": ("training.reward", "train a reward model (Bradley-Terry) on preference pairs"),
    "dpo": ("training.dpo", "direct preference optimisation on preference pairs"),
    "ppo": ("training.ppo", "RLHF: PPO against a reward model with a KL penalty to the reference"),
    "generate": ("training.generate", "sample a completion from a checkpoint (KV cache)"),
    "chat": ("training.chat", "talk to a checkpoint on stdin/stdout (chat template)"),
    "judge": (
        "training.evaluation.judge",
        "pairwise LLM-as-judge win rate of two answer sets, raw and length-controlled (torch)",
    ),
    "contamination": (
        "jobs.contamination",
        "13-gram overlap of benchmark items with training documents; decontaminated copy (Spark)",
    ),
    "eval": ("training.evaluate", "multiple-choice accuracy and bits-per-byte of a checkpoint"),
    "export": ("training.export_hf", "write a checkpoint as a Hugging Face Llama model folder"),
    "scaling": (
        "training.scaling_sweep",
        "sweep model sizes x token budgets, fit L(N, D), report the compute-optimal split",
    ),
    "ablate": ("jobs.ablate", "same model on several curation outputs, bpb at equal tokens"),
    "report": ("refinery.report.command", "run folder -> OUT/report.html (funnel, curves, evals)"),
}


# What a command stopped half way keeps, for the one-line Ctrl-C message.
_STAGE = "; a stage stopped half way keeps nothing: the same command does it again"
_CHECKPOINTS = "; checkpoints are kept: --resume goes on from the newest"
RESUMES = {
    **dict.fromkeys(("extract", "filter", "dedup", "classify", "mix", "tokenize"), _STAGE),
    "contamination": _STAGE,
    "curate": "; finished stages are kept: the same command goes on from the first one not done",
    **dict.fromkeys(("train", "anneal", "sft", "rm", "dpo", "ppo"), _CHECKPOINTS),
    "ablate": "; finished arms and runs are kept: the same command goes on from there",
    "scaling": "; finished points are kept: the same command goes on from there",
}


def non_negative_int(text: str) -> int:
    """argparse type of counts and seeds: a negative one is a usage error (exit 2), not a
    traceback from numpy deep inside the command."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def named_folder(text: str) -> str:
    """argparse type of an output folder: an empty one (`--hf "$UNSET"`) is a usage error, not
    the working directory, which export --force then replaced."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset variable?): name the folder")
    return text


class GivenOnce(argparse.Action):
    """`--config` given twice is a usage error: argparse kept the last file and dropped the
    first without a word (`--config base.yaml --config mine.yaml` ran without base.yaml)."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_{self.dest}_given"  # not the value: a default (ppo's config) is no given one
        if getattr(namespace, seen, False):
            parser.error(
                f"{option_string} given twice: name one file, and put further settings "
                "in it or as key=value overrides"
            )
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: refinery <command> [args...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "`refinery <command> --help` describes a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        status = _command(argv)
        sys.stdout.flush()  # here, where a reader that had enough is caught, not at exit
        return status
    except BrokenPipeError:  # `refinery --help | head`: the reader had enough
        sys.stdout = None  # nothing left to flush at exit
        return 0


def _command(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a script that forgot its command must not pass for a run that worked
        print(f"refinery: no command given\n\n{usage()}", file=sys.stderr)
        return 2
    if argv[:1] == ["help"] and argv[1:2]:  # `refinery help train`
        argv = [argv[1], "--help"]
    if argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from refinery import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"refinery: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])

    try:
        return with_user_errors(lambda: int(module.main(rest) or 0), f"refinery {name}: error")
    except KeyboardInterrupt:  # a second Ctrl-C in training, any in a Spark job or a sweep
        print(f"\n{stopped_by_ctrl_c(f'refinery {name}', name)}", file=sys.stderr)
        return 130


def stopped_by_ctrl_c(said_as: str, command: str) -> str:
    """The line a command stopped by Ctrl-C ends with: what it keeps (RESUMES)."""
    head = f"{said_as}: " if said_as else ""
    return f"{head}stopped by Ctrl-C{RESUMES.get(command, '')}"


if __name__ == "__main__":
    sys.exit(main())
