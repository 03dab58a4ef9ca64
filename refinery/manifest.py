"""The tokens `manifest.json`: what the tokenize stage wrote and what the trainer may sample.

Version 1 layout (all paths relative to the tokens folder)::

    {"version": 1,
     "tokenizer": {"file": "tokenizer.json", "sha256": str, "vocab_size": int,
                   "bos_id": int|null, "eos_id": int, "pad_id": int|null},
     "dtype": "uint16"|"uint32",
     "buckets": {NAME: {"tokens": int, "documents": int, "bytes": int,
                        "shards": [{"path": "NAME/shard-00000.bin", "tokens": int,
                                    "documents": int, "bytes": int, "sha256": str}]}},
     "validation": {"tokens": int, "documents": int, "bytes": int, "shards": [...]},
     "mixtures": {"pretrain": {NAME: weight}, "anneal": {NAME: weight}},
     "max_epochs": float,
     "curation_config_hash": str}

`bytes` counts the UTF-8 bytes of the documents' text, so a loss in nats per token converts
to bits per byte. A shard's `sha256` (of its .bin, then its .idx) lets `inspect-shards` find
damage that leaves every count and token id plausible; manifests written before it had none.
The fingerprint (a hash of the content) goes into every checkpoint, so a run never silently
resumes on different data. Like `shards`, this imports only numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from refinery.config import local_path
from refinery.errors import RefineryError
from refinery.shards import ShardWriter, write_documents

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
DTYPES = ("uint16", "uint32")
TOKENIZER_FILE = "tokenizer.json"  # its name in the tokens folder and in checkpoints
VALIDATION = "validation"  # the held-out split's folder
# Bucket names become folders beside these, on any filesystem.
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED_NAMES = (VALIDATION, MANIFEST_NAME, TOKENIZER_FILE)


def unusable_bucket_names(names) -> list[str]:
    """The names (repr'd) that cannot be bucket folders: the mix stage's labels are checked
    with this when configured, the tokenize stage's buckets before it writes."""
    return sorted(
        repr(n) for n in names if n is None or n in RESERVED_NAMES or not BUCKET_NAME.match(n)
    )


class ManifestError(RefineryError, ValueError):
    """A manifest.json that is missing, malformed or inconsistent with its shards."""


@dataclass(frozen=True)
class ShardEntry:
    path: Path  # absolute
    tokens: int
    documents: int
    bytes: int
    sha256: str | None = None  # of the .bin, then the .idx (shard_sha256)


@dataclass(frozen=True)
class Split:
    tokens: int
    documents: int
    bytes: int
    shards: tuple[ShardEntry, ...]


@dataclass(frozen=True)
class Tokenizer:
    file: str
    sha256: str
    vocab_size: int
    bos_id: int | None
    eos_id: int
    pad_id: int | None


@dataclass(frozen=True)
class Manifest:
    root: Path
    tokenizer: Tokenizer
    dtype: str
    buckets: dict[str, Split]
    validation: Split
    mixtures: dict[str, dict[str, float]]
    max_epochs: float
    curation_config_hash: str
    fingerprint: str
    mixtures_note: str = ""  # how the mixtures were made (the mix stage's plan, or not)

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.tokenizer.file

    def mixture(self, name: str) -> dict[str, float]:
        """Weights of mixture `name`, normalised to sum to 1."""
        if name not in self.mixtures:
            known = ", ".join(self.mixtures) or "none"
            raise ManifestError(
                f"{self.root / MANIFEST_NAME}: no mixture {name!r} (mixtures: {known})"
            )
        weights = self.mixtures[name]
        if not math.isfinite(sum(weights.values())):  # 1e308s: every share was 0
            top = max(weights.values())  # only then, so that other shares keep their bits
            weights = {bucket: w / top for bucket, w in weights.items()}
        total = sum(weights.values())
        return {bucket: w / total for bucket, w in weights.items()}


def fingerprint(content: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON: equal content, equal fingerprint."""
    blob = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def read_manifest(data_dir: str | Path) -> Manifest:
    """Read and validate `data_dir/manifest.json` (a path or a file: URI); every error names
    the file and the key."""
    root = Path(local_path(str(data_dir)))
    path = root / MANIFEST_NAME
    if root.is_file():  # OUT/tokens/manifest.json named itself: it was sought inside itself
        raise ManifestError(f"{root}: is a file: name the tokens folder ({root.parent}?)")
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found (is it the tokens folder, OUT/tokens?)")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON: {err}") from None
    return parse_manifest(content, root, path)


def _positive_number(value: Any) -> bool:
    """A finite number above 0 (JSON readers accept NaN and Infinity, which pass `> 0` or
    `<= 0` tests alike: a NaN weight drew every window from one bucket)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def parse_manifest(content: Any, root: Path, path: Path | str = MANIFEST_NAME) -> Manifest:
    check = _Checker(path)
    check.mapping(content, "")
    version = check.field(content, "version", int)
    if version != MANIFEST_VERSION:
        check.fail("version", f"is {version}, this reader knows {MANIFEST_VERSION}")
    tok = check.field(content, "tokenizer", dict)
    tokenizer = Tokenizer(
        file=check.field(tok, "file", str, "tokenizer."),
        sha256=check.field(tok, "sha256", str, "tokenizer."),
        vocab_size=check.field(tok, "vocab_size", int, "tokenizer."),
        bos_id=check.field(tok, "bos_id", int, "tokenizer.", optional=True),
        eos_id=check.field(tok, "eos_id", int, "tokenizer."),
        pad_id=check.field(tok, "pad_id", int, "tokenizer.", optional=True),
    )
    if Path(tokenizer.file).is_absolute() or ".." in Path(tokenizer.file).parts:
        check.fail(
            "tokenizer.file", f"must be relative inside the tokens folder: {tokenizer.file!r}"
        )
    if tokenizer.vocab_size <= 0:
        check.fail("tokenizer.vocab_size", "must be positive")
    dtype = check.field(content, "dtype", str)
    if dtype not in DTYPES:
        check.fail("dtype", f"is {dtype!r}, expected one of {list(DTYPES)}")
    if np.iinfo(dtype).max < tokenizer.vocab_size - 1:
        check.fail("dtype", f"{dtype} cannot hold vocab_size {tokenizer.vocab_size}")
    buckets_raw = check.field(content, "buckets", dict)
    if not buckets_raw:
        check.fail("buckets", "is empty")
    buckets = {name: check.split(raw, f"buckets.{name}", root) for name, raw in buckets_raw.items()}
    validation = check.split(check.field(content, "validation", dict), "validation", root)
    listed: dict[Path, str] = {}
    splits = {**{f"buckets.{b}": split for b, split in buckets.items()}, "validation": validation}
    for name, split in splits.items():
        for i, entry in enumerate(split.shards):
            if entry.path in listed:  # a validation shard trained on, or one sampled twice
                check.fail(f"{name}.shards[{i}].path", f"is also a shard of {listed[entry.path]}")
            listed[entry.path] = name
    mixtures_raw = check.field(content, "mixtures", dict)
    if "pretrain" not in mixtures_raw:
        check.fail("mixtures.pretrain", "is missing")
    mixtures: dict[str, dict[str, float]] = {}
    for mix_name, weights in mixtures_raw.items():
        key = f"mixtures.{mix_name}"
        check.mapping(weights, key)
        if not weights:
            check.fail(key, "is empty")
        for bucket, weight in weights.items():
            if bucket not in buckets:
                check.fail(f"{key}.{bucket}", f"names no bucket (buckets: {', '.join(buckets)})")
            if not _positive_number(weight):
                check.fail(f"{key}.{bucket}", f"weight must be a positive number, got {weight!r}")
        mixtures[mix_name] = {b: float(w) for b, w in weights.items()}
    max_epochs = float(check.field(content, "max_epochs", (int, float)))
    if not _positive_number(max_epochs):
        check.fail("max_epochs", f"must be a positive number, got {max_epochs!r}")
    return Manifest(
        root=root,
        tokenizer=tokenizer,
        dtype=dtype,
        buckets=buckets,
        validation=validation,
        mixtures=mixtures,
        max_epochs=max_epochs,
        curation_config_hash=check.field(content, "curation_config_hash", str),
        fingerprint=fingerprint(content),
        mixtures_note=str(content.get("mixtures_note", "")),
    )


class _Checker:
    """Type checks that raise a ManifestError naming the manifest file and the dotted key."""

    def __init__(self, path: Path | str):
        self.path = path

    def fail(self, key: str, problem: str):
        raise ManifestError(f"{self.path}: key {key!r} {problem}")

    def mapping(self, value: Any, key: str) -> None:
        if not isinstance(value, dict):
            self.fail(key or "<top level>", f"must be a JSON object, got {type(value).__name__}")

    def field(self, obj: dict, name: str, kind, prefix: str = "", optional: bool = False):
        key = prefix + name
        if name not in obj:
            self.fail(key, "is missing")
        value = obj[name]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            names = "/".join(k.__name__ for k in kinds)
            self.fail(key, f"must be {names}, got {value!r}")
        return value

    def split(self, raw: Any, key: str, root: Path) -> Split:
        self.mapping(raw, key)
        totals = {name: self.field(raw, name, int, key + ".") for name in _COUNTS}
        shards_raw = self.field(raw, "shards", list, key + ".")
        shards = []
        for i, entry in enumerate(shards_raw):
            where = f"{key}.shards[{i}]"
            self.mapping(entry, where)
            rel = self.field(entry, "path", str, where + ".")
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                self.fail(where + ".path", f"must be relative inside the tokens folder: {rel!r}")
            counts = {name: self.field(entry, name, int, where + ".") for name in _COUNTS}
            for name, count in counts.items():  # `bytes` has no shard header to disagree with
                if count < 0:
                    self.fail(f"{where}.{name}", f"must be >= 0, got {count}")
            sha = self.field(entry, "sha256", str, where + ".") if "sha256" in entry else None
            shards.append(ShardEntry(path=root / rel, **counts, sha256=sha))
        for name in _COUNTS:
            total = sum(getattr(s, name) for s in shards)
            if total != totals[name]:
                self.fail(f"{key}.{name}", f"is {totals[name]} but its shards sum to {total}")
        return Split(shards=tuple(shards), **totals)


_COUNTS = ("tokens", "documents", "bytes")


# ---- writing (the tokenize stage and tests) -------------------------------------------------


def write_documents_shard(
    root: str | Path, rel_path: str, documents: list[np.ndarray], dtype: str, doc_bytes: list[int]
) -> dict[str, Any]:
    """Write one shard of whole documents and return its manifest entry."""
    writer = write_documents(Path(root) / rel_path, documents, dtype)
    return shard_entry(root, rel_path, writer, sum(doc_bytes))


def shard_entry(root: str | Path, rel_path: str, writer: ShardWriter, text_bytes: int) -> dict:
    """The manifest entry of a shard `writer` has closed at root/rel_path."""
    return {
        "path": rel_path,
        "tokens": writer.tokens,
        "documents": writer.documents,
        "bytes": int(text_bytes),
        "sha256": shard_sha256(Path(root) / rel_path),
    }


def split_entry(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """A bucket or validation entry: its shards plus their summed counts."""
    totals = {name: sum(s[name] for s in shards) for name in _COUNTS}
    return {**totals, "shards": list(shards)}


def sha256_file(*paths: str | Path) -> str:
    """sha256 of the files' bytes, one after the other."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def shard_sha256(path: str | Path) -> str:
    """A shard's manifest hash: its .bin, then its .idx."""
    path = Path(path)
    return sha256_file(path.with_suffix(".bin"), path.with_suffix(".idx"))


def verified_tokenizer(manifest: Manifest) -> Path:
    """The tokens folder's tokenizer file, checked against the manifest's hash: token ids mean
    nothing without it, and a checkpoint copies it."""
    path = manifest.tokenizer_path
    if not path.is_file():
        raise ManifestError(f"{path}: tokenizer file named by manifest.json is missing")
    if sha256_file(path) != manifest.tokenizer.sha256:
        raise ManifestError(f"{path}: sha256 differs from manifest.json's tokenizer.sha256")
    return path


def write_manifest(data_dir: str | Path, content: dict[str, Any]) -> Manifest:
    """Validate `content` and write it as `data_dir/manifest.json` (temp file, then rename)."""
    root = Path(data_dir)
    manifest = parse_manifest(content, root, root / MANIFEST_NAME)
    tmp = root / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST_NAME)
    return manifest
