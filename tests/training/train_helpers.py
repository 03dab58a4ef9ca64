"""Helpers shared by the trainer tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "conf" / "train" / "tiny.yaml"
QUIET = ["train.progress=false", "train.tensorboard=false"]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(TINY), f"data={data}", f"out={out}", *QUIET, *extra]


SUBJECTS = ["the cat", "a dog", "my friend", "the teacher", "our team", "the river", "a bird"]
VERBS = ["sees", "likes", "builds", "finds", "paints", "follows", "answers"]
OBJECTS = ["a red ball", "the old house", "green apples", "a short poem", "the blue sky"]


def english_texts(count: int, seed: int = 0) -> list[str]:
    """Simple, learnable English sentences: a real tokenizer and a falling loss in seconds."""
    import random

    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        sentences = [
            f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
            for _ in range(rng.randint(3, 8))
        ]
        texts.append(" ".join(sentences))
    return texts


def count_recomputed_blocks(monkeypatch) -> list:
    """A list that grows by one each time a block goes through torch's checkpoint (activation
    checkpointing), which still runs."""
    import training.model as model_module

    calls = []
    checkpoint = model_module.checkpoint
    monkeypatch.setattr(
        model_module, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k)
    )
    return calls


@contextlib.contextmanager
def another_run_holding(out: Path):
    """A separate process holding `out`'s run lock, as a second job's trainer would."""
    out.mkdir(parents=True, exist_ok=True)
    holder = "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
    holder += "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(300)"
    command = [sys.executable, "-c", holder, str(out / ".lock")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as other:
        try:
            assert other.stdout.readline() == "held\n"
            yield
        finally:
            other.kill()
