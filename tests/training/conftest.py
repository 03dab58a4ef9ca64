"""Fixtures: tiny synthetic token datasets written through the real shard/manifest writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.synthetic import write_dataset


@pytest.fixture(scope="session")
def tokens(tmp_path_factory) -> Path:
    """Two pretraining buckets (one learnable) and a validation split."""
    root = tmp_path_factory.mktemp("data") / "tokens"
    write_dataset(root, {"web": 30_000, "wiki": 15_000}, learnable=True, seed=3)
    return root
