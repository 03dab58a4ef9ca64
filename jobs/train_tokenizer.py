"""Train the byte-level BPE tokenizer on a seeded sample of documents: OUT/tokenizer/.

    refinery train-tokenizer --input runs/demo/extract --output runs/demo [tokenize.vocab_size=N]

Writes OUT/tokenizer/tokenizer.json (a HF `tokenizers` file) and prints its sha256; pass it
to the tokenize stage with `tokenize.tokenizer=OUT/tokenizer/tokenizer.json`. The tokenize
stage runs the same training itself when no tokenizer is configured. A tokenizer already
there is kept (as a finished stage is), and said to come from other settings or input when
OUT/tokenizer/training.json, written beside it, records others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script's folder on the path, where jobs/tokenize.py would
    # shadow the standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from curation.config import CurationConfig, TokenizeConfig
from curation.inputs import resolve_documents
from curation.spark.session import build_session, stop_session
from curation.spark.stage import read_documents
from jobs.common import (
    check_output,
    curation_lock,
    load_config,
    local_dir,
    parse_stage_args,
    read_record,
    run_main,
    stage_parser,
)
from jobs.tokenize import TRAINING_RECORD, trained_tokenizer
from refinery.config import to_dict
from refinery.errors import RefineryError
from refinery.manifest import sha256_file
from refinery.results import write_results
from refinery.tokenizer import load_tokenizer
from refinery.utf8 import read_utf8

# The tokenize settings the trained tokenizer depends on; the others shape only the shards.
SHAPING = ("vocab_size", "pretokenizer", "sample_bytes", "validation_share", "seed")


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("refinery train-tokenizer", __doc__.splitlines()[0], local_output=True)
    args = parse_stage_args(parser, argv)
    config = load_config(args, "train-tokenizer")
    inputs = resolve_documents(args.input)  # a missing input is said, skipped or not
    check_output(args.output)
    with curation_lock(args.output.rstrip("/")):
        return train(args, config, inputs)


def train(args: argparse.Namespace, config: CurationConfig, inputs: list[str]) -> int:
    target = local_dir(args.output, "train-tokenizer") / "tokenizer" / "tokenizer.json"
    record = training_record(config.tokenize, args.output, inputs)
    if target.is_file() and not args.force:  # as a finished stage is kept
        print(f"train-tokenizer: already done ({target}); --force redoes it")
        if other_training(target.parent / TRAINING_RECORD, record, args.output):
            print(
                "train-tokenizer: note: it was trained with other tokenize.* settings or "
                "--input than these, and is kept as it is; --force trains it again"
            )
        print(f"sha256:    {sha256_file(target)}")
        return 0
    started = time.time()
    trained = target.with_name(f".{target.name}.new")  # a failed run keeps the old one
    spark = build_session(config.spark, "train-tokenizer")
    try:
        trained_tokenizer(read_documents(spark, inputs), config.tokenize, trained)
    finally:
        stop_session(spark)
    # The old tokenizer gone first, then the record, then the new tokenizer: a run killed
    # anywhere leaves no tokenizer (redone) or the new one beside its own record.
    target.unlink(missing_ok=True)
    write_results(target.parent / TRAINING_RECORD, record)
    os.replace(trained, target)
    vocab = load_tokenizer(target).get_vocab_size()
    print(f"tokenizer: {target} ({vocab} tokens, {time.time() - started:.1f} s)")
    print(f"sha256:    {sha256_file(target)}")
    return 0


def training_record(tokenize: TokenizeConfig, out: str, inputs: list[str]) -> dict:
    """What shapes the tokenizer: the SHAPING tokenize settings and the documents read, those
    inside OUT by their path there (as run.json's `read`), so a moved or copied run folder
    rerun on its own documents trains nothing new."""
    return {
        "tokenize": {k: v for k, v in to_dict(tokenize).items() if k in SHAPING},
        "inputs": read_record(out, inputs),
    }


def other_training(path: Path, record: dict, out: str) -> bool:
    """Whether the recorded training differs from `record` (False without a record: a
    tokenizer trained before records were kept is not second-guessed)."""
    if not path.is_file():
        return False
    try:
        recorded = json.loads(read_utf8(path, RefineryError))
        # a record of before 2026-12-06 holds every tokenize setting: those that shape it count
        settings = {k: v for k, v in recorded["tokenize"].items() if k in SHAPING}
        # one of before 2026-12-07 holds every input absolute: those inside OUT are its part
        inputs = recorded["inputs"]
        absolute = [i for i in inputs if os.path.isabs(i)]
        inputs = sorted([i for i in inputs if not os.path.isabs(i)] + read_record(out, absolute))
        return {**recorded, "tokenize": settings, "inputs": inputs} != record
    except (json.JSONDecodeError, RefineryError, KeyError, TypeError, AttributeError):
        return True  # a damaged record records nothing


if __name__ == "__main__":
    run_main(main)
