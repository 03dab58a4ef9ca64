"""Train the byte-level BPE tokenizer on a seeded sample of documents: OUT/tokenizer/.

    refinery train-tokenizer --input runs/demo/extract --output runs/demo [tokenize.vocab_size=N]

Writes OUT/tokenizer/tokenizer.json (a HF `tokenizers` file) and prints its sha256; pass it
to the tokenize stage with `tokenize.tokenizer=OUT/tokenizer/tokenizer.json`. The tokenize
stage runs the same training itself when no tokenizer is configured.
"""

from __future__ import annotations

import os
import sys
import time

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script's folder on the path, where jobs/tokenize.py would
    # shadow the standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from curation.inputs import resolve_documents
from curation.spark.session import build_session
from curation.spark.stage import read_documents
from jobs.common import load_config, local_dir, parse_stage_args, run_main, stage_parser
from jobs.tokenize import trained_tokenizer
from refinery.manifest import sha256_file
from refinery.tokenizer import load_tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("refinery train-tokenizer", __doc__.splitlines()[0], local_output=True)
    args = parse_stage_args(parser, argv)
    config = load_config(args)
    target = local_dir(args.output) / "tokenizer" / "tokenizer.json"
    if target.is_file() and not args.force:  # as a finished stage is kept
        print(f"train-tokenizer: already done ({target}); --force redoes it")
        return 0
    inputs = resolve_documents(args.input)
    started = time.time()
    spark = build_session(config.spark, "train-tokenizer")
    try:
        trained_tokenizer(read_documents(spark, inputs), config.tokenize, target)
    finally:
        spark.stop()
    vocab = load_tokenizer(target).get_vocab_size()
    print(f"tokenizer: {target} ({vocab} tokens, {time.time() - started:.1f} s)")
    print(f"sha256:    {sha256_file(target)}")
    return 0


if __name__ == "__main__":
    run_main(main)
