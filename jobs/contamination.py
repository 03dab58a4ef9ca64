"""Contamination check: which evaluation items share a word 13-gram with the training documents.

    spark-submit jobs/contamination.py --input runs/demo/dedup --benchmarks ../shared/data/mc_eval \
        [--out contamination.json] [--decontaminate runs/demo-clean] [key=value ...]

Prints and writes, per benchmark, the share of items with any overlap and which items.
`--decontaminate OUT2` writes the documents without the contaminated ones to OUT2/contamination/
(the removed ones to OUT2/rejected/stage=contamination/, reason `contaminated`, with the keys of
the items they overlap), with OUT2/stats/contamination.json adding up like any stage's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from collections import Counter
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit (see jobs/dedup.py)
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark import StorageLevel

from curation.contamination import (
    NGRAM,
    SHORTEST,
    EvalItem,
    build_index,
    contamination_report,
)
from curation.inputs import InputError, resolve_documents
from curation.spark.contamination import (
    CONTAMINATED_COLUMN,
    contaminated_documents,
    contaminated_item_keys,
    decontamination_outcomes,
    shard_documents,
)
from curation.spark.fs import HadoopFS
from curation.spark.session import build_session, stop_session
from curation.spark.stage import check_unique_ids, read_documents, run_stage
from jobs.common import (
    check_output,
    curation_lock,
    load_config,
    parse_stage_args,
    run_main,
    summary_line,
)
from jobs.mix import MIXTURE_FILE, mixture_plan
from refinery.cli import GivenOnce
from refinery.config import config_hash, to_dict
from refinery.manifest import MANIFEST_NAME
from refinery.mc_data import read_benchmarks
from refinery.results import check_results_path, write_results

STAGE = "contamination"
NORMALISATION = (
    "HTML entities decoded, NFKC, lowercase, Unicode punctuation and symbols as spaces, "
    "apostrophes and format characters deleted, whitespace-split words"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"refinery {STAGE}", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", nargs="+", action="extend", required=True, metavar="DOCS",
        help="training documents Parquet (a stage output such as OUT/dedup or OUT/mix), or a "
        "tokens folder (OUT/tokens: its training shards, decoded with its tokenizer)",
    )  # fmt: skip
    parser.add_argument(
        "--benchmarks", required=True, nargs="+", action="extend", metavar="FILE_OR_DIR",
        help="multiple-choice benchmark files or folders (formats of `refinery eval --mc`)",
    )  # fmt: skip
    parser.add_argument(
        "--include-flawed", action="store_true",
        help="also check MMLU-Redux rows whose error_type is not `ok` (as `refinery eval`)",
    )  # fmt: skip
    parser.add_argument("--out", metavar="FILE", help="write the report JSON here")
    parser.add_argument(
        "--decontaminate", metavar="OUT2",
        help="run folder for a copy of the documents without the contaminated ones",
    )  # fmt: skip
    parser.add_argument(
        "--ngram",
        type=int,
        default=NGRAM,
        help=f"words per n-gram ({NGRAM}; an item text of {SHORTEST} or more words counts whole)",
    )
    parser.add_argument(
        "--config", action=GivenOnce, metavar="FILE", help="curation YAML (its spark section)"
    )
    parser.add_argument("--force", action="store_true", help="redo a finished --decontaminate")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parse_stage_args(parser, argv, lists=("input", "benchmarks"))
    if not args.benchmarks:
        parser.error("--benchmarks needs at least one file or folder")
    if args.ngram < 1:
        parser.error("--ngram must be at least 1")
    if args.out:
        check_results_path(args.out, reads=[*args.input, *args.benchmarks])
    return args


def eval_items(
    paths: str | list[str], include_flawed: bool = False, left_out: dict | None = None
) -> list[EvalItem]:
    """Every multiple-choice item under `paths` that `refinery eval` scores (MMLU-Redux rows
    annotated as flawed only with `include_flawed`; `left_out` gets the others by benchmark
    and error type), keyed by its id `<file stem>:<line>`. Answers are not read: a test
    split whose labels are hidden is checked as well."""
    return [
        EvalItem(stem, item.id, item.question, tuple(item.choices))
        for stem, items in read_benchmarks(paths, include_flawed, left_out, answers=False).items()
        for item in items
    ]


def is_tokens_folder(inputs: list[str]) -> bool:
    return len(inputs) == 1 and os.path.isfile(os.path.join(inputs[0], MANIFEST_NAME))


def resolve_contamination_inputs(specs: list[str]) -> list[str]:
    """One tokens folder (its manifest.json) as it is, or documents Parquet inputs."""
    if is_tokens_folder(specs):
        return [os.path.abspath(specs[0])]
    tokens = [s for s in specs if is_tokens_folder([s])]
    if tokens:
        raise InputError(
            f"--input {tokens[0]} is a tokens folder: the check reads one at a time, without "
            "other inputs; run it once per folder"
        )
    return resolve_documents(specs)


def refuse_decontaminating_tokens(inputs: list[str], decontaminate: str | None) -> None:
    if decontaminate and is_tokens_folder(inputs):
        raise InputError(
            f"{inputs[0]} is a tokens folder: --decontaminate rewrites a documents Parquet "
            "(run it on the stage output the shards were made from, then tokenize again)"
        )


def check_contamination(
    spark,
    config,
    inputs: list[str],
    items: list[EvalItem],
    n: int = NGRAM,
    decontaminate: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The report; with `decontaminate`, also the decontaminated copy (its stats in the
    report under "decontaminate", or null when that copy was already done)."""
    tokens = is_tokens_folder(inputs)
    refuse_decontaminating_tokens(inputs, decontaminate)
    # the mix stage's plan travels with its documents, so the clean copy of OUT/mix is
    # tokenized with the same weights (inputs whose plans do not go together: before the scan)
    plan = mixture_plan(HadoopFS(spark), inputs) if decontaminate else None
    index = build_index(items, n)
    docs = shard_documents(spark, inputs[0]) if tokens else read_documents(spark, inputs)
    # read three times below; recomputed from the documents for an executor lost
    contaminated = contaminated_documents(spark, docs, index).persist(StorageLevel.MEMORY_AND_DISK)
    keys = contaminated_item_keys(contaminated)
    report: dict[str, Any] = {
        "ngram": n,
        "ngram_lengths": list(index.lengths),  # n, and the lengths of short items checked whole
        "normalisation": NORMALISATION,
        "item_text": item_text(n),
        "template_ngrams_ignored": index.template_ngrams,
        "documents": {
            "input": docs.select("id").distinct().count(),  # as contaminated ones are counted
            "contaminated": contaminated.count(),
        },
        "benchmarks": contamination_report(index, keys),
    }
    if decontaminate:

        def outcomes():
            check_unique_ids(docs)  # the flags are joined back by id
            return decontamination_outcomes(docs, contaminated)

        def carried_plan() -> dict[str, Any]:
            return {MIXTURE_FILE: plan[1]} if plan else {}

        out = decontaminate.rstrip("/")
        options = {"stage_files": carried_plan, "rejected_columns": (CONTAMINATED_COLUMN,)}
        files = HadoopFS(spark).folders_digest(docs.inputFiles())
        settings = {**to_dict(config), STAGE: check_settings(inputs, items, n, files)}
        stats = run_stage(spark, settings, out, STAGE, force, outcomes, **options)
        report["decontaminate"] = stats
    return report


def item_text(n: int) -> str:
    """What of an item is checked: with n-grams shorter than SHORTEST words, no item is
    checked whole (it has n-grams of its own down to n words)."""
    shortest = min(SHORTEST, n)
    whole = f", whole when {shortest} to {n - 1} words" if shortest < n else ""
    return f"question followed by each choice{whole}"


def check_settings(inputs: list[str], items: list[EvalItem], n: int, files: str) -> dict[str, Any]:
    """What the decontaminated copy depends on besides the config, recorded in run.json: a
    rerun into the same folder with other benchmarks or input, or on input files written
    again since (`files`, HadoopFS.folders_digest), says it kept the old copy."""
    counts = Counter(item.benchmark for item in items)
    return {
        "inputs": [i if "://" in i else os.path.abspath(i) for i in inputs],  # ./d/* is d/*
        "input_files": files,
        "ngram": n,
        "benchmarks": dict(sorted(counts.items())),
        # sorted: the same benchmarks named in another order are the same items
        "items_hash": config_hash(sorted(dataclasses.astuple(item) for item in items)),
    }


def summary(report: dict[str, Any]) -> str:
    lines = [f"{'benchmark':<40} {'items':>6} {'unchkd':>6} {'hit':>5} {'share':>7}"]
    for name, row in report["benchmarks"].items():
        share = "n/a" if row["share"] is None else f"{100 * row['share']:.2f}%"
        lines.append(
            f"{name:<40} {row['items']:>6} {row['unchecked']:>6} {row['contaminated']:>5} "
            f"{share:>7}"
        )
    flawed = sum(sum(row.get("left_out", {}).values()) for row in report["benchmarks"].values())
    if flawed:
        lines.append(
            f"{flawed:,} MMLU-Redux rows annotated as flawed were not checked, as `refinery eval` "
            "leaves them out (`left_out`); --include-flawed checks them"
        )
    docs = report["documents"]
    lines.append(f"documents: {docs['input']} checked, {docs['contaminated']} contaminated")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args, "contamination")
    inputs = resolve_contamination_inputs(args.input)
    if args.decontaminate:  # before the scan, not after it
        refuse_decontaminating_tokens(inputs, args.decontaminate)
        check_output(args.decontaminate, flag="--decontaminate")
    left_out: dict = {}
    items = eval_items(args.benchmarks, args.include_flawed, left_out)
    writes = curation_lock(args.decontaminate) if args.decontaminate else contextlib.nullcontext()
    with writes:
        spark = build_session(config.spark, STAGE)
        try:
            report = check_contamination(
                spark, config, inputs, items, args.ngram, args.decontaminate, args.force
            )
        finally:
            stop_session(spark)
    for name, flawed in left_out.items():  # test questions too: the report says they were not
        report["benchmarks"][name]["left_out"] = dict(sorted(flawed.items()))
    print(summary(report))
    if report.get("decontaminate"):
        print(summary_line(STAGE, report["decontaminate"]))
    if args.out:
        write_results(args.out, report)
    return 0


if __name__ == "__main__":
    run_main(main)
