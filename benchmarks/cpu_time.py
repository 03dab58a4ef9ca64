"""CPU time of a benchmark and everything it started (the JVM, Python workers, their children),
and the bare-vs-job comparison the stage throughput benchmarks share.

Per-core speed measured this way stays meaningful when other work shares the machine, where
wall-clock figures drift with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

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


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every stage throughput benchmark takes: --cores, --repeats, --json."""
    parser.add_argument("--cores", type=int, default=2, help="local[N] for the job")
    parser.add_argument("--repeats", type=int, default=3, help="bare + warm job pairs")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def alternate_with_bare(
    job: Callable[[str], tuple[int, float]],
    bare: Callable[[], tuple[float, float]],
    cores: int,
    repeats: int,
) -> list[dict]:
    """A cold job run, then `repeats` pairs of a bare run and a warm job run, so both see the
    same load on a shared machine. `job(name)` runs the stage on `cores` cores and returns
    (units done, its wall seconds); `bare()` returns one core's (units per wall second, per CPU
    second). Prints a row per run; returns the job runs, the warm ones with their ratio to the
    bare run just before them."""
    print(f"{'':24}{'per core (wall)':>16}{'per CPU-s':>12}")
    runs: list[dict] = []

    def timed(name: str, before: tuple[float, float] | None) -> None:
        cpu = cpu_seconds()
        units, wall = job(name)
        cpu = cpu_seconds() - cpu
        per_core, per_cpu = units / wall / cores, units / cpu
        run = {"run": name, "job": [per_core, per_cpu], "seconds": wall, "cpu": cpu}
        line = f"job {name}, local[{cores}]".ljust(24) + f"{per_core:>16,.1f}{per_cpu:>12,.1f}"
        line += f"  ({wall:.1f} s, {cpu:.1f} CPU-s"
        if before:
            run.update(bare=list(before), ratio=[per_core / before[0], per_cpu / before[1]])
            ratio = run["ratio"]
            line += f"; x the bare run before it: {ratio[0]:.2f} wall, {ratio[1]:.2f} CPU"
        print(line + ")", flush=True)
        runs.append(run)

    timed("cold", None)
    for i in range(repeats):
        before = bare()
        print("bare, 1 core".ljust(24) + f"{before[0]:>16,.1f}{before[1]:>12,.1f}", flush=True)
        timed(f"warm{i}", before)
    return runs


def finish(figures: dict, json_path: str | Path | None) -> None:
    """Print the median ratios and the load average; write `figures` (with the medians) as
    JSON to `json_path` when given."""
    figures["median_ratio"] = median_ratios(figures["runs"])
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
