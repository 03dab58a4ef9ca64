"""The Parquet parts of a Spark output folder, as every non-Spark reader here lists them."""

from __future__ import annotations

from pathlib import Path


def parquet_parts(folder: Path) -> list[Path]:
    """`*.parquet` in name order (so row order, and every seeded sample, is the same on every
    read), without the `_` and `.` files Spark and the task writers leave beside them."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(("_", ".")))
