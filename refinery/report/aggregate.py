"""The report's numbers, as plain functions of plain data (no files, no Spark, no plotting)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from refinery.errors import RefineryError


class ReportError(RefineryError):
    """A run folder file the report cannot read or whose numbers do not add up."""


@dataclass(frozen=True)
class StageFunnel:
    """One stage's accounting: input = kept + sum(rejected) + errors (DESIGN.md)."""

    stage: str
    input: int
    kept: int
    rejected: dict[str, int]
    errors: int
    tokens: int | None  # only stages that count tokens (tokenize) say how many they kept
    seconds: float | None


def stage_funnel(stage: str, stats: Any, source: str) -> StageFunnel:
    """Check a stage's stats JSON and return its funnel; errors name `source` and the key."""
    if not isinstance(stats, dict):
        raise ReportError(f"{source}: must be a JSON object, got {type(stats).__name__}")

    def count(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReportError(f"{source}: key {key!r} must be a count, got {value!r}")
        return value

    for key in ("input", "kept", "rejected", "errors"):
        if key not in stats:
            raise ReportError(f"{source}: key {key!r} is missing")
    if not isinstance(stats["rejected"], dict):
        raise ReportError(f"{source}: key 'rejected' must be an object of reason: count")
    rejected = {r: count(f"rejected.{r}", n) for r, n in sorted(stats["rejected"].items())}
    funnel = StageFunnel(
        stage=stage,
        input=count("input", stats["input"]),
        kept=count("kept", stats["kept"]),
        rejected=rejected,
        errors=count("errors", stats["errors"]),
        tokens=count("tokens", stats["tokens"]) if "tokens" in stats else None,
        seconds=stats.get("seconds"),
    )
    accounted = funnel.kept + sum(rejected.values()) + funnel.errors
    if accounted != funnel.input:
        raise ReportError(
            f"{source}: input {funnel.input} != kept + rejected + errors = {accounted}"
        )
    return funnel


def funnel_warnings(
    funnels: Sequence[StageFunnel],
    finished: dict[str, bool],
    finished_at: dict[str, str],
    reads: dict[str, list[str] | None],
) -> list[str]:
    """What makes the funnel (stats/*.json, in pipeline order) disagree with the run's data:
    a stage that finished after a stage that read it, or kept another count than that stage
    read (one of them was redone alone), and stats whose stage output is not finished
    (`finished`: its _SUCCESS exists; `finished_at`: run.json's times). A stage read the
    stages `reads` names (run alone; none of the funnel's: nothing to compare), else the one
    before it."""
    warnings = [
        f"stats/{f.stage}.json has no finished {f.stage} output beside it (_SUCCESS): "
        "the stage was killed while committing or its output was removed; rerun it"
        for f in funnels
        if not finished.get(f.stage, True)
    ]
    for i, after in enumerate(funnels[1:], 1):
        named = reads.get(after.stage)
        sources = [funnels[i - 1]] if named is None else [f for f in funnels if f.stage in named]
        for before in sources:
            then, now = finished_at.get(before.stage), finished_at.get(after.stage)
            if then and now and then > now:  # redone alone with the same count: only times tell
                warnings.append(
                    f"{before.stage} finished ({then}) after {after.stage} ({now}): "
                    f"{after.stage} and the stages after it read an earlier {before.stage} "
                    "output; `refinery curate` redoes every stage after one that ran again"
                )
            elif len(sources) == 1 and after.input != before.kept:
                warnings.append(
                    f"{after.stage} read {after.input:,} documents where {before.stage} kept "
                    f"{before.kept:,}: they come from different runs of {before.stage} (a "
                    f"stage redone alone, or {after.stage} run on other input); `refinery "
                    "curate` redoes every stage after one that ran again"
                )
    return warnings


def ordered_stages(found: Iterable[str], pipeline: Sequence[str]) -> list[str]:
    """`found` stages in pipeline order, any others after them alphabetically."""
    found = set(found)
    return [s for s in pipeline if s in found] + sorted(found - set(pipeline))


@dataclass(frozen=True)
class Histogram:
    """Counts of several series over shared bin edges, so they can be overlaid."""

    edges: list[float]
    counts: dict[str, list[int]]


def histogram(series: dict[str, Sequence[float | None]], bins: int, integer: bool) -> Histogram:
    """Bin every series on one set of edges spanning all their values (None and NaN dropped).
    Integer data gets bins centred on whole numbers, at most `bins` of them, each as wide
    as the same whole number of units, so a count of 3 never straddles two bars."""
    clean = {
        label: np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
        for label, values in series.items()
    }
    clean = {label: values for label, values in clean.items() if values.size}
    if not clean:
        return Histogram(edges=[], counts={})
    low = min(float(v.min()) for v in clean.values())
    high = max(float(v.max()) for v in clean.values())
    if integer:
        width = max(1, math.ceil((high - low + 1) / bins))
        steps = math.ceil((high - low + 1) / width)
        edges = low - 0.5 + width * np.arange(steps + 1)
    else:
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
    counts = {label: np.histogram(v, bins=edges)[0].tolist() for label, v in clean.items()}
    return Histogram(edges=edges.tolist(), counts=counts)


def cluster_sizes(cluster_ids: Iterable[str | None]) -> list[int]:
    """Documents per duplicate cluster (a cluster is every document sharing a cluster_id)."""
    return sorted(Counter(c for c in cluster_ids if c is not None).values())


def pick_samples(groups: Sequence[str], per_group: int, seed: int) -> list[int]:
    """Indices of up to `per_group` rows of each group label, drawn with `seed`; groups in
    name order, rows of a group in row order."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    chosen: list[int] = []
    for group in sorted(members):
        rows = members[group]
        take = min(per_group, len(rows))
        chosen += sorted(rng.choice(rows, size=take, replace=False).tolist())
    return chosen


def excerpt(text: str | None, limit: int) -> str:
    """At most `limit` characters of `text`, marked when cut (escaping is the renderer's job)."""
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metric_series(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Every numeric key of metrics.jsonl records as (steps, values), keys in order of first
    appearance; a record without a numeric `step` is placed at its line number."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for line, record in enumerate(records, start=1):
        step = record.get("step")
        x = step if is_number(step) else line
        for key, value in record.items():
            if key != "step" and is_number(value):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(x)
                ys.append(value)
    return series


def metric_panels(keys: Sequence[str]) -> list[list[str]]:
    """Keys grouped into plot panels: `val_X` shares the panel of `X` (loss with val_loss);
    panels with a loss or a validation metric lead, the rest keep their order."""
    panels: list[list[str]] = []
    placed: dict[str, list[str]] = {}
    for key in keys:
        partner = key.removeprefix("val_") if key.startswith("val_") else None
        if partner in placed:
            placed[partner].append(key)
            continue
        panel = [key]
        panels.append(panel)
        placed[key] = panel
    return sorted(panels, key=lambda panel: not _headline(panel))


def _headline(panel: list[str]) -> bool:
    return any(key == "loss" or key.startswith("val_") for key in panel)


Table = tuple[str, list[str], list[list[Any]]]  # caption, header, rows


def json_tables(content: Any, caption: str) -> list[Table]:
    """Any JSON as tables: an object of scalars is a key/value table, an object of such objects
    is one matrix (rows = its keys, columns = their keys); deeper objects recurse with dotted
    captions, and scalars at a level are gathered into one table."""
    if not isinstance(content, dict):
        return [(caption, ["value"], [[content]])]
    scalars = [[k, v] for k, v in content.items() if not isinstance(v, dict)]
    nested = {k: v for k, v in content.items() if isinstance(v, dict)}
    tables: list[Table] = []
    if scalars:
        tables.append((caption, ["key", "value"], scalars))
    if nested and all(_flat(v) for v in nested.values()):
        columns = list(dict.fromkeys(c for v in nested.values() for c in v))
        rows = [[k, *(v.get(c) for c in columns)] for k, v in nested.items()]
        tables.append((caption, ["", *columns], rows))
        return tables
    for key, value in nested.items():
        tables += json_tables(value, f"{caption}.{key}" if caption else key)
    return tables


def _flat(obj: dict[str, Any]) -> bool:
    return all(not isinstance(v, dict) for v in obj.values())
