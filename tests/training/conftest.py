"""Fixtures: tiny synthetic token datasets written through the real shard/manifest writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.synthetic import write_dataset

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "conf" / "train" / "tiny.yaml"
QUIET = ["train.progress=false", "train.tensorboard=false"]


@pytest.fixture(scope="session")
def tokens(tmp_path_factory) -> Path:
    """Two pretraining buckets (one learnable) and a validation split."""
    root = tmp_path_factory.mktemp("data") / "tokens"
    write_dataset(root, {"web": 30_000, "wiki": 15_000}, learnable=True, seed=3)
    return root


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(TINY), f"data={data}", f"out={out}", *QUIET, *extra]
