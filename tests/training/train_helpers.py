"""Helpers shared by the trainer tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "conf" / "train" / "tiny.yaml"
QUIET = ["train.progress=false", "train.tensorboard=false"]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(TINY), f"data={data}", f"out={out}", *QUIET, *extra]
