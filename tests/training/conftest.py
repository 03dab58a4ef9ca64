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


@pytest.fixture(scope="session")
def text_tokens(tmp_path_factory) -> Path:
    """A tokens folder of simple English with a real BPE tokenizer (special tokens included)."""
    from train_helpers import english_texts

    from training.synthetic import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text") / "tokens", english_texts(400))


@pytest.fixture(scope="session")
def pretrained(text_tokens, tmp_path_factory) -> Path:
    """A tiny model pretrained for 30 steps on `text_tokens`: the `--from` of post-training,
    eval and export tests. Its checkpoint holds the real tokenizer."""
    from train_helpers import train_args

    from refinery.cli import main as cli

    out = tmp_path_factory.mktemp("pretrained") / "train"
    assert cli(train_args(text_tokens, out, "max_steps=30", "train.eval_every=0")) == 0
    return out
