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


def write_text_dataset(root: Path, texts: list[str], vocab_size: int = 384) -> Path:
    """A tokens folder (real byte-level BPE tokenizer with Refinery's special tokens) of `texts`,
    one bucket `web` plus a validation split of every tenth text, in the manifest contract."""
    import hashlib

    import numpy as np

    from curation.tokenize import train_tokenizer
    from refinery.manifest import split_entry, write_documents_shard, write_manifest
    from refinery.tokenizer import EOS

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size)
    tokenizer.save(str(root / "tokenizer.json"))
    eos = tokenizer.token_to_id(EOS)

    def shard(prefix: str, part: list[str]) -> dict:
        docs = [np.array([*tokenizer.encode(t).ids, eos]) for t in part]
        sizes = [len(t.encode()) for t in part]
        return split_entry([write_documents_shard(root, f"{prefix}/0.bin", docs, "uint16", sizes)])

    content = {
        "version": 1,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": hashlib.sha256((root / "tokenizer.json").read_bytes()).hexdigest(),
            "vocab_size": tokenizer.get_vocab_size(),
            "bos_id": tokenizer.token_to_id("<|begin_of_text|>"),
            "eos_id": eos,
            "pad_id": tokenizer.token_to_id("<|pad|>"),
        },
        "dtype": "uint16",
        "buckets": {"web": shard("web", [t for i, t in enumerate(texts) if i % 10])},
        "validation": shard("validation", texts[::10]),
        "mixtures": {"pretrain": {"web": 1.0}, "anneal": {"web": 1.0}},
        "max_epochs": 100.0,
        "curation_config_hash": "english-texts",
    }
    write_manifest(root, content)
    return root
