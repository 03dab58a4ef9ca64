"""Results JSON files (eval, judge, contamination reports), written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from refinery.errors import RefineryError


def check_results_path(path: str | Path, reads: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any work, a results path that cannot be written as a regular file (a
    folder, a device such as /dev/null that the final rename would replace, a place without
    write access), that is a file the command `reads`, or that lies inside a checkpoint folder
    or a folder the command `reads` (a run, a documents folder that every later read would find
    the report in; a checkpoint's run too)."""
    path = Path(path)
    if path.is_dir():
        raise RefineryError(f"--out {path}: is a folder; name a .json file")
    if path.exists() and not path.is_file():
        raise RefineryError(f"--out {path}: is not a regular file; name a .json file")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise RefineryError(f"--out {path}: {blocking} is a file, not a folder")
    if any(Path(r).is_file() and Path(r).resolve() == path.resolve() for r in reads):
        raise RefineryError(f"--out {path}: is a file this command reads; write elsewhere")
    folders = [Path(r) for r in reads if Path(r).is_dir()]
    folders += [f.parent for f in folders if (f / "model.safetensors").is_file()]
    inside = next((f for f in folders if _within(path, f)), None)
    if inside is not None:
        raise RefineryError(
            f"--out {path}: inside {inside}, which this command reads; write elsewhere"
        )
    if (path.parent / "model.safetensors").is_file():
        raise RefineryError(f"--out {path}: {path.parent} is a checkpoint; write elsewhere")
    if path.parent.is_dir():  # a folder still to be made is checked when it is made
        probe = temp_path(path)
        try:
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise RefineryError(f"--out {path}: cannot write there ({err.strerror})") from None
    return path


def _within(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_results(path: str | Path, content: dict[str, Any] | list[Any]) -> None:
    """Write `content` as indented JSON through a temp file and a rename, so a reader never
    sees half a report."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        raise RefineryError(f"{path}: cannot write the results ({err.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)  # left only when the rename failed
