"""Datasets in the real shard + manifest format, for tests and benchmarks: random tokens, or
real text with a real tokenizer.

Random documents are ids ending in eos; a bucket can be made learnable (a repeated pattern)
so short runs show a falling loss. Never used to train anything real.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from refinery.manifest import split_entry, write_documents_shard, write_manifest


def random_documents(rng: np.random.Generator, tokens: int, vocab: int, eos: int, pattern=None):
    """Documents of 50..400 tokens totalling about `tokens`, each ending in eos."""
    docs, total = [], 0
    while total < tokens:
        length = int(rng.integers(50, 400))
        if pattern is None:
            doc = rng.integers(0, vocab - 1, size=length)
        else:
            doc = np.resize(pattern, length)
        doc[-1] = eos
        docs.append(doc)
        total += length
    return docs


def write_dataset(
    root: str | Path,
    buckets: dict[str, int],
    vocab_size: int = 512,
    validation_tokens: int = 4096,
    shards_per_bucket: int = 2,
    mixtures: dict | None = None,
    max_epochs: float = 4.0,
    seed: int = 0,
    learnable: bool = False,
):
    """Write shards, a fake tokenizer.json and manifest.json under `root`; return the Manifest.

    buckets: name -> approximate token count. mixtures default to equal pretrain weights and
    an anneal mixture of the first bucket.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    eos = vocab_size - 1
    dtype = "uint16" if vocab_size <= 2**16 else "uint32"
    pattern = rng.integers(0, vocab_size - 1, size=37) if learnable else None

    def shards(prefix: str, tokens: int, count: int):
        entries = []
        for i in range(count):
            docs = random_documents(rng, tokens // count, vocab_size, eos, pattern)
            doc_bytes = [4 * len(d) for d in docs]  # pretend ~4 UTF-8 bytes per token
            rel = f"{prefix}/shard-{i:05d}.bin"
            entries.append(write_documents_shard(root, rel, docs, dtype, doc_bytes))
        return split_entry(entries)

    tok_text = json.dumps({"model": {"type": "synthetic", "vocab_size": vocab_size}})
    tok_path = root / "tokenizer.json"
    tok_path.write_text(tok_text)
    names = list(buckets)
    content = {
        "version": 1,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": hashlib.sha256(tok_text.encode()).hexdigest(),
            "vocab_size": vocab_size,
            "bos_id": None,
            "eos_id": eos,
            "pad_id": None,
        },
        "dtype": dtype,
        "buckets": {n: shards(n, buckets[n], shards_per_bucket) for n in names},
        "validation": shards("validation", validation_tokens, 1),
        "mixtures": mixtures or {"pretrain": {n: 1.0 for n in names}, "anneal": {names[0]: 1.0}},
        "max_epochs": max_epochs,
        "curation_config_hash": f"synthetic-{seed}",
    }
    return write_manifest(root, content)


def write_text_dataset(
    root: str | Path,
    texts: list[str],
    vocab_size: int = 384,
    validation: list[str] | None = None,
    label: str = "text-dataset",
    pretokenizer: str = "llama3",
) -> Path:
    """A tokens folder of real text with a real byte-level BPE tokenizer (Refinery's special
    tokens included) trained on it: one bucket `web`, and `validation` as the held-out split
    (default: every tenth text, left out of `web`). For tests and benchmarks that need text,
    not the Spark tokenize stage."""
    from refinery.tokenizer import BOS, EOS, PAD, special_ids, train_tokenizer

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if validation is None:
        texts, validation = [t for i, t in enumerate(texts) if i % 10], texts[::10]
    tokenizer = train_tokenizer([*texts, *validation], vocab_size, pretokenizer)
    tokenizer.save(str(root / "tokenizer.json"))
    ids = special_ids(tokenizer)
    dtype = "uint16" if tokenizer.get_vocab_size() <= 2**16 else "uint32"

    def shard(prefix: str, part: list[str]) -> dict:
        docs = [np.array([*encoding.ids, ids[EOS]]) for encoding in tokenizer.encode_batch(part)]
        sizes = [len(t.encode()) for t in part]
        return split_entry([write_documents_shard(root, f"{prefix}/0.bin", docs, dtype, sizes)])

    content = {
        "version": 1,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": hashlib.sha256((root / "tokenizer.json").read_bytes()).hexdigest(),
            "vocab_size": tokenizer.get_vocab_size(),
            "bos_id": ids[BOS],
            "eos_id": ids[EOS],
            "pad_id": ids[PAD],
        },
        "dtype": dtype,
        "buckets": {"web": shard("web", texts)},
        "validation": shard("validation", validation),
        "mixtures": {"pretrain": {"web": 1.0}, "anneal": {"web": 1.0}},
        "max_epochs": 100.0,
        "curation_config_hash": label,
    }
    write_manifest(root, content)
    return root
