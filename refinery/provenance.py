"""What produced an output: package version and git commit, recorded in run.json."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from refinery import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def git_sha() -> str | None:
    """Commit of the source tree in use (with `-dirty` if modified), None outside a checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def provenance() -> dict[str, str | None]:
    return {"version": __version__, "git_sha": git_sha()}
