"""The report's figures, drawn on matplotlib Figure objects (Agg; no pyplot, no display)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from refinery.report.aggregate import Histogram, StageFunnel

COLORS = ("#3b75af", "#ef8636", "#529e3e", "#c53932", "#8d69b8", "#84584e")


def plain(label: str) -> str:
    """`label` shown as written: matplotlib reads text between two `$` as a formula, and one
    it cannot parse (a metric named `x$\\foo$`) would stop the report."""
    return str(label).replace("$", r"\$")


def funnel_chart(funnels: Sequence[StageFunnel]) -> Figure:
    """Stacked bars per stage: kept, rejected and errors out of its input."""
    figure = Figure(figsize=(8, 0.5 + 0.45 * len(funnels)))
    axes = figure.subplots()
    names = [plain(f.stage) for f in funnels][::-1]
    kept = np.array([f.kept for f in funnels][::-1])
    rejected = np.array([sum(f.rejected.values()) for f in funnels][::-1])
    errors = np.array([f.errors for f in funnels][::-1])
    axes.barh(names, kept, color=COLORS[2], label="kept")
    axes.barh(names, rejected, left=kept, color=COLORS[1], label="rejected")
    axes.barh(names, errors, left=kept + rejected, color=COLORS[3], label="errors")
    axes.set_xlabel("records / documents in")
    axes.legend(loc="lower right", fontsize=8)
    return figure


def histogram_chart(
    hist: Histogram, xlabel: str, log_y: bool = False, ylabel: str = "documents"
) -> Figure:
    """Overlaid step histograms of every series in `hist` on its shared edges."""
    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    edges = np.array(hist.edges)
    for color, (label, counts) in zip(COLORS, hist.counts.items(), strict=False):
        axes.stairs(
            counts, edges, label=f"{plain(label)} ({sum(counts):,})", color=color, linewidth=1.5
        )
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if log_y:
        axes.set_yscale("symlog", linthresh=1)
    axes.legend(fontsize=8)
    return figure


def shares_chart(labels: Sequence[str], shares: dict[str, Sequence[float]]) -> Figure:
    """Grouped bars: one group per domain, one bar per named share (before, target, after)."""
    figure = Figure(figsize=(max(5, 1.1 * len(labels) + 2), 3))
    axes = figure.subplots()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(shares))
    for i, (name, values) in enumerate(shares.items()):
        axes.bar(x + i * width, values, width, label=plain(name), color=COLORS[i % len(COLORS)])
    axes.set_xticks(x + width * (len(shares) - 1) / 2, [plain(s) for s in labels], rotation=20)
    axes.set_ylabel("share of tokens")
    axes.legend(fontsize=8)
    return figure


def metrics_chart(
    series: dict[str, tuple[list[float], list[float]]], panels: Sequence[Sequence[str]]
) -> Figure:
    """One small plot per panel of metric keys against the step, three to a row."""
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.6 * columns, 2.6 * lines), layout="constrained")
    grid = np.atleast_1d(figure.subplots(lines, columns, squeeze=False)).ravel()
    for axes, keys in zip(grid, panels, strict=False):
        for color, key in zip(COLORS, keys, strict=False):
            steps, values = series[key]
            marker = "o" if len(steps) < 3 else None  # a lone val_loss point stays visible
            axes.plot(steps, values, label=plain(key), color=color, marker=marker, markersize=3)
        axes.set_title(plain(", ".join(keys)), fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
        if len(keys) > 1:
            axes.legend(fontsize=7)
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    return figure
