"""CPU time of a benchmark and everything it started (the JVM, Python workers, their children).

Per-core speed measured this way stays meaningful when other work shares the machine, where
wall-clock figures drift with the load.
"""

from __future__ import annotations

import statistics

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


def median_ratios(runs: list[dict]) -> list[float]:
    """Median (wall, CPU) ratio to bare over the runs that have one, printed and returned."""
    ratios = [r["ratio"] for r in runs if "ratio" in r]
    medians = [statistics.median(r[k] for r in ratios) for k in (0, 1)]
    print(
        f"median x bare over {len(ratios)} warm runs: {medians[0]:.2f} wall, {medians[1]:.2f} CPU"
        " (target >= 0.85)"
    )
    return medians
