"""MinHash signatures over shingles of normalised text, and LSH band keys.

Two implementations of the same estimator, picked by `dedup.minhash.implementation`:

* `DatasketchSigner`: the reference, datasketch's MinHash (SHA-1 of each shingle's bytes,
  then `update_batch`), one document at a time.
* `NumpySigner`: a whole batch of documents at once. Words are found and hashed over the
  batch's code points by numpy (curation/dedup/wordhash.py; character n-grams by pandas'
  vectorised SipHash), a shingle's 32-bit hash is folded from its units' hashes with
  splitmix64, and each permutation is the affine map a·x + b mod 2^32 with odd a (datasketch's
  own default scheme, "affine32"), computed for all (shingle, permutation) pairs at once with
  the per-document minimum taken by `np.minimum.reduceat`. Different hash functions, so the
  signatures differ from datasketch's, but they estimate the same Jaccard similarity
  (tests/test_dedup_minhash.py compares the two).

Both return uint32 signatures of `bands * rows` values; `band_keys` turns one into a 64-bit
key per band, so two documents share a bucket when a whole band of their signatures agrees.
The probability of that, for Jaccard s, is 1 - (1 - s^rows)^bands (the LSH S-curve).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from datasketch import MinHash
from pandas.util import hash_array

from curation.dedup.text import normalize_text, normalized_words
from curation.dedup.wordhash import mix64, word_hashes

EMPTY = np.uint32(0xFFFFFFFF)  # a signature value no shingle reached (a text without shingles)
# Shingles of the (permutations x shingles) matrix computed at once, a long document's in
# slices: bounds its memory at ~16 MB.
CHUNK_SHINGLES = 1 << 15


@dataclass(frozen=True)
class ShingleSpec:
    """Which shingles: word n-grams (FineWeb: 5) or character n-grams (NeMo: 24)."""

    kind: str = "word"  # "word" | "char"
    n: int = 5

    def units(self, text: str) -> list[str]:
        """What a shingle of `text` is made of: its normalised words, or the character n-grams
        of its normalised form."""
        if self.kind == "word":
            return normalized_words(text)
        normalized = normalize_text(text)
        if len(normalized) <= self.n:
            return [normalized] if normalized else []
        return [normalized[i : i + self.n] for i in range(len(normalized) - self.n + 1)]

    @property
    def width(self) -> int:
        """Units folded into one shingle."""
        return self.n if self.kind == "word" else 1


def shingles(text: str, spec: ShingleSpec) -> set[str]:
    """The shingle set of `text` (exact Jaccard for tests and benchmarks). A text shorter than
    one shingle is one shingle of all its units, so short documents still compare."""
    units = spec.units(text)
    if spec.width == 1:
        return set(units)
    if len(units) < spec.width:
        return {" ".join(units)} if units else set()
    return {" ".join(units[i : i + spec.width]) for i in range(len(units) - spec.width + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of signature positions that agree: an unbiased estimate of Jaccard."""
    return float(np.mean(sig_a == sig_b))


class DatasketchSigner:
    """Reference signatures: datasketch MinHash, SHA-1 of each shingle's UTF-8 bytes."""

    def __init__(self, spec: ShingleSpec, num_perm: int, seed: int) -> None:
        self.spec, self.num_perm, self.seed = spec, num_perm, seed
        reference = MinHash(num_perm=num_perm, seed=seed)
        # Built once and shared: datasketch would otherwise redraw them for every document.
        self.scheme, self.permutations = reference.scheme, reference.permutations

    def signature(self, text: str) -> np.ndarray:
        sketch = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            permutations=self.permutations,
            scheme=self.scheme,
        )
        sketch.update_batch([s.encode("utf-8") for s in shingles(text, self.spec)])
        return sketch.hashvalues.astype(np.uint32)

    def signatures(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        for i, text in enumerate(texts):
            out[i] = self.signature(text)
        return out


class NumpySigner:
    """Vectorised signatures for a batch of documents (see the module docstring)."""

    def __init__(self, spec: ShingleSpec, num_perm: int, seed: int) -> None:
        self.spec, self.num_perm = spec, num_perm
        rng = np.random.default_rng(seed)
        # An odd multiplier makes x -> a·x + b a bijection on 32-bit words.
        self.a = rng.integers(0, 2**31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = rng.integers(0, 2**32, num_perm, dtype=np.uint32)

    def unit_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """uint64 hashes of every document's units, concatenated, and the unit count of each.
        Words take the vectorised route (curation/dedup/wordhash.py); character n-grams are
        hashed as strings by pandas."""
        if self.spec.kind == "word":
            return word_hashes(texts)
        units = [self.spec.units(t) for t in texts]
        lengths = np.fromiter(map(len, units), dtype=np.int64, count=len(units))
        flat = np.fromiter(chain.from_iterable(units), dtype=object, count=int(lengths.sum()))
        return (hash_array(flat) if len(flat) else np.zeros(0, dtype=np.uint64)), lengths

    def shingle_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes of every document's shingles, concatenated, and the shingle count of
        each document (duplicates within a document are harmless to a minimum)."""
        unit_hashes, lengths = self.unit_hashes(texts)
        width = self.spec.width
        total = len(unit_hashes)
        position = np.arange(total)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        ends = starts + np.repeat(lengths, lengths)
        folded = np.zeros(total, dtype=np.uint64)
        for k in range(width):
            inside = position + k < ends
            following = unit_hashes[np.minimum(position + k, max(total - 1, 0))]
            folded = np.where(inside, mix64(folded ^ following), folded)
        # A shingle starts wherever `width` units remain in its document, or at the start of a
        # document shorter than one shingle.
        full = position + width <= ends
        short = (position == starts) & (ends - starts < width)
        keep = full | short
        counts = np.bincount(np.repeat(np.arange(len(texts)), lengths)[keep], minlength=len(texts))
        return (folded[keep] >> np.uint64(32)).astype(np.uint32), counts

    def signatures(self, texts: list[str]) -> np.ndarray:
        hashes, counts = self.shingle_hashes(texts)
        out = np.full((len(texts), self.num_perm), EMPTY, dtype=np.uint32)
        doc_end = np.cumsum(counts)
        first = 0
        while first < len(texts):
            # Documents [first, last) whose shingles fit one chunk (at least one document).
            limit = (doc_end[first - 1] if first else 0) + CHUNK_SHINGLES
            last = max(first + 1, int(np.searchsorted(doc_end, limit, side="right")))
            self._fill(out, hashes, counts, doc_end, first, last)
            first = last
        return out

    def _fill(self, out, hashes, counts, doc_end, first: int, last: int) -> None:
        begin = int(doc_end[first - 1]) if first else 0
        chunk = hashes[begin : int(doc_end[last - 1])]
        if not len(chunk):
            return
        if len(chunk) > CHUNK_SHINGLES:  # one long document: its minima slice by slice
            out[first] = EMPTY
            for start in range(0, len(chunk), CHUNK_SHINGLES):
                permuted = self._permuted(chunk[start : start + CHUNK_SHINGLES])
                np.minimum(out[first], permuted.min(axis=1), out=out[first])
            return
        # (permutations x shingles): each row's minimum per document is a contiguous reduce.
        permuted = self._permuted(chunk)
        docs = np.arange(first, last)[counts[first:last] > 0]
        offsets = (doc_end[docs] - counts[docs]) - begin
        out[docs] = np.minimum.reduceat(permuted, offsets, axis=1).T

    def _permuted(self, hashes: np.ndarray) -> np.ndarray:
        """(permutations x shingles) a * h + b, wrapping mod 2^32 (at most CHUNK_SHINGLES
        shingles: 112 permutations of them are 14 MB)."""
        permuted = self.a[:, None] * hashes[None, :]
        permuted += self.b[:, None]
        return permuted


def make_signer(implementation: str, spec: ShingleSpec, num_perm: int, seed: int):
    signers = {"numpy": NumpySigner, "datasketch": DatasketchSigner}
    return signers[implementation](spec, num_perm, seed)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents x bands) int64 bucket keys: band i's `rows` values folded into 64 bits."""
    docs = signatures.shape[0]
    keys = np.empty((docs, bands), dtype=np.uint64)
    for band in range(bands):
        key = np.full(docs, band, dtype=np.uint64)
        for value in signatures[:, band * rows : (band + 1) * rows].T:
            key = mix64(key ^ value.astype(np.uint64))
        keys[:, band] = key
    return keys.view(np.int64)
