"""Read what a run folder holds, with pyarrow and json only; absent inputs are None, not errors.

A file that exists but cannot be read raises a ReportError naming it: a report silently
missing a section because of a damaged file would look like a stage that never ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from curation.config import STAGE_ORDER
from refinery.jsonl import json_objects
from refinery.parquet_parts import parquet_parts
from refinery.report.aggregate import ReportError, StageFunnel, funnel_warnings
from refinery.utf8 import read_utf8

# Folders under OUT that training commands write (DESIGN.md: runs/<name>/train/, anneal/, ...),
# in the order the report shows them; any other folder with a metrics.jsonl follows.
TRAINING_ORDER = ("train", "anneal", "sft", "rm", "dpo", "ppo")
# What a run folder holds at least one of (or a training folder's `*/metrics.jsonl`; a folder
# named `anneal` alone may be a token bucket): a report of any other folder would be all "Not
# present", written into a folder that is not a run.
RUN_MARKS = ("run.json", "stats", "extract", "tokens", "eval")


def _what_it_is(folder: Path) -> str:
    if (folder / "manifest.json").is_file():
        return (
            " (no run.json, stats/ or stage folder); it holds token shards, which the report "
            f"shows from their run folder: refinery report {folder.parent}"
        )
    if (folder / "metrics.jsonl").is_file():
        return (
            " (no run.json, stats/ or stage folder); it holds a training run, which the report "
            f"shows from its run folder: refinery report {folder.parent}"
        )
    return " (no run.json, stats/ or stage folder)"


class RunFolder:
    """Paths and readers for one run folder OUT."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()  # `report .` is named by its folder
        if not self.root.is_dir():
            what = "a file" if self.root.exists() else "no such directory"
            raise ReportError(f"{self.root}: not a run folder ({what})")
        if (self.root / "tokenization.json").is_file():
            raise ReportError(
                f"{self.root}: a `refinery ablate` folder, not a run folder: its ablation.json "
                "is its report"
            )
        if (self.root / "scaling.json").is_file():
            raise ReportError(
                f"{self.root}: a `refinery scaling` folder, not a run folder: its scaling.json "
                "and scaling.png are its report (notebooks/scaling_fit.ipynb shows them)"
            )
        marks = [self.root / name for name in RUN_MARKS] + list(self.root.glob("*/metrics.jsonl"))
        if not any(mark.exists() for mark in marks):
            raise ReportError(f"{self.root}: not a run folder{_what_it_is(self.root)}")

    def json(self, *parts: str) -> Any | None:
        """A JSON file under OUT, or None when it does not exist."""
        return read_json(self.root.joinpath(*parts))

    def run_record(self) -> dict[str, Any] | None:
        """OUT/run.json (config, version, stage timings), or None before any stage ran."""
        run = self.json("run.json")
        if run is not None and not isinstance(run, dict):
            raise ReportError(f"{self.root / 'run.json'}: must be a JSON object")
        return run

    def pipeline(self) -> list[str]:
        """The configured stage order from run.json, else the standard one. A decontaminated
        copy (`refinery contamination --decontaminate`) comes before the stage that read it,
        else last: a copy no stage read is a branch off the stage it read (`reads`)."""
        run = self.run_record() or {}
        configured = run.get("config", {}).get("pipeline", {}).get("stages", [])
        stages = [s for s in configured if isinstance(s, str)] + list(run.get("stages", {}))
        order = list(dict.fromkeys(stages + STAGE_ORDER))
        if "contamination" in order:
            order.remove("contamination")
            readers = [order.index(s) for s in order if "contamination" in (self.reads(s) or [])]
            order.insert(min(readers) if readers else len(order), "contamination")
        return order

    def reads(self, stage: str) -> list[str] | None:
        """The stages of OUT that `stage`, run alone, read: run.json's `read` (paths inside
        OUT recorded relative to it) or the contamination check's `inputs` (absolute); [] when
        all it read is elsewhere (or OUT was moved since), None where nothing is recorded
        (`curate` reads the stage before in the pipeline)."""
        record = (self.run_record() or {}).get("stages", {}).get(stage, {})
        if not isinstance(record, dict):
            return None
        read = record.get("read")
        if stage == "contamination":
            read = (record.get("contamination") or {}).get("inputs")
        if not isinstance(read, list):
            return None
        paths = [Path(p) for p in read if isinstance(p, str)]
        inside = [self._inside(p) if p.is_absolute() else p for p in paths]
        return [p.parts[0] for p in inside if p and p.parts and ":" not in p.parts[0]]

    def _inside(self, path: Path) -> Path | None:
        """An absolute path relative to OUT, as written (its stage folder may be a link
        elsewhere) or resolved (OUT named through a link); None when outside OUT."""
        for form in (path, path.resolve()):
            if form.is_relative_to(self.root):
                return form.relative_to(self.root)
        return None

    def funnel_warnings(self, funnels: list[StageFunnel]) -> list[str]:
        """`aggregate.funnel_warnings` with what this folder says: which outputs finished,
        when, and what each stage read (the report and explore_run.ipynb)."""
        finished = {f.stage: self.finished(f.stage) for f in funnels}
        reads = {f.stage: self.reads(f.stage) for f in funnels}
        return funnel_warnings(funnels, finished, self.finished_at(), reads)

    def finished_at(self) -> dict[str, str]:
        """{stage: when it last finished (ISO time)} from run.json."""
        stages = (self.run_record() or {}).get("stages", {})
        return {
            s: r["finished"] for s, r in stages.items() if isinstance(r, dict) and "finished" in r
        }

    def stats(self) -> dict[str, tuple[Any, Path]]:
        """{stage: (stats JSON, its path)} for every OUT/stats/<stage>.json."""
        folder = self.root / "stats"
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return {p.stem: (read_json(p), p) for p in paths}

    def finished(self, stage: str) -> bool:
        """Whether the stage's output folder is committed (_SUCCESS; tokenize's is tokens/)."""
        return (self.root / ("tokens" if stage == "tokenize" else stage) / "_SUCCESS").is_file()

    def kept(self, stage: str) -> ds.Dataset | None:
        """OUT/<stage>/: the documents a stage kept."""
        return parquet_dataset(self.root / stage)

    def rejected(self, stage: str) -> ds.Dataset | None:
        return parquet_dataset(self.root / "rejected" / f"stage={stage}")

    def errors(self, stage: str) -> ds.Dataset | None:
        return parquet_dataset(self.root / "errors" / f"stage={stage}")

    def training_folders(self) -> list[Path]:
        """Subfolders of OUT holding a metrics.jsonl, in TRAINING_ORDER, then by name."""
        found = {p.parent.name: p.parent for p in self.root.glob("*/metrics.jsonl")}
        names = [n for n in TRAINING_ORDER if n in found]
        names += sorted(set(found) - set(TRAINING_ORDER))
        return [found[n] for n in names]

    def eval_files(self) -> list[Path]:
        folder = self.root / "eval"
        return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: not valid JSON: {err}") from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, one JSON object per line (blank lines ignored). A last
    line without its newline that does not parse is a write cut short by a kill, and left out
    (`--resume` trims it the same way)."""
    text = read_utf8(path, ReportError)
    head, _, last = text.rpartition("\n")
    try:
        json.loads(last or "null")
    except json.JSONDecodeError:
        text = head
    return [record for _, record in json_objects(text, path, ReportError)]


def parquet_dataset(folder: Path) -> ds.Dataset | None:
    """The Parquet parts of a Spark output folder in name order (so row order, and with it
    every seeded sample, is the same on every read), or None when there are none."""
    if not folder.is_dir():
        return None
    parts = parquet_parts(folder)
    if not parts:
        return None
    for part in parts:  # the dataset opens the first footer only; a later part would fail unnamed
        try:
            pq.read_metadata(part)
        except (pa.ArrowInvalid, OSError) as err:
            raise ReportError(f"{part}: cannot read it as Parquet: {err}") from None
    return ds.dataset([str(p) for p in parts], format="parquet")


def column(dataset: ds.Dataset | None, name: str) -> list[Any] | None:
    """One column as a Python list, or None when the dataset or the column is absent."""
    if dataset is None or name not in dataset.schema.names:
        return None
    return dataset.to_table(columns=[name]).column(name).to_pylist()


def text_lengths(dataset: ds.Dataset | None) -> list[int] | None:
    """Characters of each document's `text` (counted in Arrow, without building the strings)."""
    if dataset is None or "text" not in dataset.schema.names:
        return None
    lengths: list[int] = []
    for batch in dataset.to_batches(columns=["text"]):  # a batch at a time: stages can be large
        lengths += pc.utf8_length(batch.column("text")).to_pylist()
    return lengths


def content_order(dataset: ds.Dataset) -> list[int]:
    """Row indices in the order of the rows' content (their id, else source and offset), not
    of the part files, which Spark cuts by its settings: samples drawn in it are the same for
    the same rows however they were written."""
    keys = [c for c in ("id", "source", "offset") if c in dataset.schema.names]
    if not keys:
        return list(range(dataset.count_rows()))
    table = dataset.to_table(columns=keys)
    decoded = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table]
    table = pa.table(decoded, names=keys)  # Arrow sorts no dictionary column
    order = pc.sort_indices(table, [(key, "ascending") for key in keys])  # nulls last
    return order.to_pylist()


def rows(dataset: ds.Dataset, indices: list[int], columns: list[str]) -> list[dict[str, Any]]:
    """The rows at `indices` (row order of `parquet_dataset`), with the columns that exist."""
    present = [c for c in columns if c in dataset.schema.names]
    return dataset.take(indices, columns=present).to_pylist() if indices else []
