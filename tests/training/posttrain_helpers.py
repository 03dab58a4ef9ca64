"""Helpers for the post-training tests (imported by name, like train_helpers)."""

from __future__ import annotations

import json
from pathlib import Path

QUIET = ["progress=false"]


def posttrain_args(command: str, source: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [command, "--from", str(source), f"data={data}", f"out={out}", *QUIET, *extra]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def separable_pairs(count: int, seed: int = 0) -> list[dict]:
    """Pairs a reward model can separate: the chosen answer starts "yes", the rejected "no"."""
    from train_helpers import english_texts

    texts = english_texts(2 * count, seed)
    return [
        {
            "prompt": texts[2 * i][:60],
            "chosen": f"yes. {texts[2 * i + 1][:40]}",
            "rejected": f"no. {texts[2 * i + 1][:40]}",
        }
        for i in range(count)
    ]
