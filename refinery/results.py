"""Results JSON files (eval, judge, contamination reports), written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_results(path: str | Path, content: dict[str, Any] | list[Any]) -> None:
    """Write `content` as indented JSON through a temp file and a rename, so a reader never
    sees half a report."""
    path = Path(path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
