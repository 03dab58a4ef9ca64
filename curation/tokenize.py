"""Tokenize stage logic: train the BPE tokenizer, encode documents, pack token shards.

Plain functions and one small class, testable with Python lists; the Spark glue in
curation/spark/tokens.py only moves Arrow batches in and out of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from refinery.errors import RefineryError
from refinery.manifest import RESERVED_NAMES, shard_entry, unusable_bucket_names
from refinery.shards import ShardWriter
from refinery.tokenizer import EOS

DEFAULT_BUCKET = "web"  # every document, until the mix stage assigns buckets
# Unicode's White_Space characters, which Java's (?U)\s matches: the stage and the tokenizer
# sample (a Spark filter) call the same texts blank. Python's str.strip also strips \x1c-\x1f.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


class TokenizeError(RefineryError, ValueError):
    """Input or output the tokenize stage cannot work with, explained."""


def check_bucket_names(names: Iterable[str | None]) -> None:
    """Bucket names become folders beside `validation/`: refuse any that cannot."""
    names = list(names)
    if None in names:  # rows never mixed, beside mixed ones
        raise TokenizeError(
            "some documents have no bucket: they were not mixed (an input beside the mix "
            "stage's is another stage's output); give the mix stage's output alone, or run "
            "mix over all of them"
        )
    bad = unusable_bucket_names(names)
    if bad:
        raise TokenizeError(
            f"bucket names {', '.join(bad)} are not usable folder names "
            f"(letters, digits, _ . -; not {', '.join(RESERVED_NAMES)})"
        )


def reject_reason(text: str | None) -> str | None:
    """Why a document cannot be tokenized (None = keep): nothing to learn from blank text."""
    if text is None or not text.strip(WHITE_SPACE):
        return "empty"
    return None


def document_hash(doc_id: str, seed: int) -> int:
    """A seeded 63-bit hash of the document id: decides whether it is held out."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def is_validation(doc_hash: int, share: float) -> bool:
    """Held out when the hash falls in the lowest `share` of its range (same id, same answer)."""
    return doc_hash < share * 2**63


def encode_documents(tokenizer: Tokenizer, texts: list[str], dtype: np.dtype) -> list[np.ndarray]:
    """Token ids of each text with EOS appended, as arrays of the shard dtype."""
    eos = tokenizer.token_to_id(EOS)
    return [
        np.fromiter([*encoding.ids, eos], dtype=dtype)
        for encoding in tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    ]


def split_document(tokens: np.ndarray, cap: int) -> list[np.ndarray]:
    """Pieces of at most `cap` tokens, in order: a long document is split, never truncated.
    The last piece has a token of text before the EOS that ends the document: alone, the EOS
    would be an index entry without text."""
    starts = list(range(0, len(tokens), cap))
    if len(starts) > 1 and len(tokens) - starts[-1] == 1 and cap > 1:
        starts[-1] -= 1
    return [tokens[a:b] for a, b in zip(starts, [*starts[1:], len(tokens)], strict=True)]


@dataclass
class ShardPacker:
    """Packs document pieces, in arrival order, into shards of at most `shard_tokens` tokens,
    written as they come (ShardWriter: a shard's tokens are never all in memory).

    Shards are named `<prefix>/part-<task>-<n>.bin` inside `root`; the stage renames them to
    `shard-NNNNN.bin` once every task has finished.
    """

    root: Path
    prefix: str
    task: int
    shard_tokens: int
    dtype: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    _writer: ShardWriter | None = None
    _rel: str = ""
    _bytes: int = 0

    def add(self, piece: np.ndarray, text_bytes: int) -> None:
        if self._writer and self._writer.tokens + len(piece) > self.shard_tokens:
            self.flush()
        if self._writer is None:
            self._rel = f"{self.prefix}/part-{self.task:05d}-{len(self.entries):05d}.bin"
            self._writer = ShardWriter(self.root / self._rel, self.dtype)
        self._writer.add(piece)
        self._bytes += text_bytes

    def flush(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self.entries.append(shard_entry(self.root, self._rel, self._writer, self._bytes))
        self._writer, self._bytes = None, 0

    def discard(self) -> None:
        """Remove the shard being written (the task failed)."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


def pack_documents(
    documents: Iterator[tuple[str, np.ndarray, int]],
    root: Path,
    task: int,
    shard_tokens: int,
    max_document_tokens: int,
    dtype: str,
) -> list[dict[str, Any]]:
    """Write (prefix, tokens, text bytes) documents, grouped by prefix, into shards.

    A document longer than `max_document_tokens` becomes several index entries; its text bytes
    go with its last piece so bits per byte stays exact. Returns the shard entries with their
    prefix, in write order.
    """
    packers: dict[str, ShardPacker] = {}
    try:
        for prefix, tokens, text_bytes in documents:
            if prefix not in packers:
                packers[prefix] = ShardPacker(root, prefix, task, shard_tokens, dtype)
            pieces = split_document(tokens, max_document_tokens)
            for i, piece in enumerate(pieces):
                packers[prefix].add(piece, text_bytes if i == len(pieces) - 1 else 0)
        for packer in packers.values():
            packer.flush()
    except BaseException:
        for packer in packers.values():
            packer.discard()
        raise
    return [
        {"prefix": prefix, **entry}
        for prefix, packer in sorted(packers.items())
        for entry in packer.entries
    ]
