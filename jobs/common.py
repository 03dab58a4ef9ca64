"""Argument parsing and start-up shared by every curation job (cc-pyspark's job skeleton)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from curation.config import CurationConfig, load_curation_config
from refinery.errors import RefineryError


def stage_parser(prog: str, description: str, needs_input: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--input",
        nargs="+",
        required=needs_input,
        metavar="IN",
        help="WARC/ARC/WET files, directories, globs, a text file of paths, or a "
        "Common Crawl warc.paths.gz manifest"
        if needs_input
        else "documents Parquet",
    )
    parser.add_argument(
        "--output", required=True, metavar="OUT", help="run folder (local, hdfs://, s3a://)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config (default: conf/curation/default.yaml)"
    )
    parser.add_argument("--force", action="store_true", help="redo stages that already finished")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def load_config(args: argparse.Namespace) -> CurationConfig:
    return load_curation_config(args.config, args.overrides)


def run_main(main: Callable[[list[str] | None], int]) -> None:
    """`spark-submit jobs/<stage>.py` entry: user errors print a message, not a traceback."""
    try:
        code = main(sys.argv[1:])
    except RefineryError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    sys.exit(code)
