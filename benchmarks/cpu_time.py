"""CPU time of a benchmark and everything it started (the JVM, Python workers, their children).

Per-core speed measured this way stays meaningful when other work shares the machine, where
wall-clock figures drift with the load.
"""

from __future__ import annotations

import psutil


def cpu_seconds() -> float:
    """CPU time of this process and every descendant (alive, or reaped by a live parent)."""
    total = 0.0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total
