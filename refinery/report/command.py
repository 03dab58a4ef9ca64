"""`refinery report OUT [--seed N]`: write OUT/report.html and print its path (last line)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from refinery.cli import non_negative_int
from refinery.config import user_path
from refinery.report import html
from refinery.report.runfolder import RunFolder
from refinery.report.sections import Options, report_sections

REPORT_NAME = "report.html"


def build_report(out: str | Path, options: Options | None = None) -> Path:
    """Render the report of run folder `out` into out/report.html (temp file, then rename)."""
    run = RunFolder(out)
    page = html.page(
        f"Refinery run report: {run.root.name}", report_sections(run, options or Options())
    )
    target = run.root / REPORT_NAME
    tmp = run.root / f".{REPORT_NAME}.tmp"
    try:  # a name that is not UTF-8 (a Latin-1 file name) is shown as its escapes
        tmp.write_text(page, encoding="utf-8", errors="backslashreplace")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery report", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the run folder (OUT of `refinery curate`, runs/<name>)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the sampled documents"
    )
    parser.add_argument(
        "--samples", type=non_negative_int, default=5, help="kept documents to show (default 5)"
    )
    args = parser.parse_args(argv)
    path = build_report(user_path(args.out), Options(seed=args.seed, kept_samples=args.samples))
    print(f"report: {path.stat().st_size:,} bytes")
    print(path)
    return 0
