"""A 64-bit hash of every normalised word of a batch of texts, computed with numpy.

The words are exactly those of `normalized_words` (curation/dedup/text.py), found without its
word regex: per text only `simplified` (NFKD, one regex substitution, NFC, lower(): C calls); the
batch is joined, encoded once as UTF-32 and read as code points, and two facts about
Python's `re` on str patterns turn the rest into one table look-up: `\\w` is
`ch.isalnum() or ch == "_"` and `\\d` is `ch.isdecimal()` (sre's SRE_UNI_IS_WORD and
SRE_UNI_IS_DIGIT), and the words pattern adds combining marks and makes each letter of an
unspaced script a word alone (tests/test_dedup_minhash.py checks every code point).
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

from curation.dedup.text import CODE_POINTS, simplified, solo_and_mark_codes

SEPARATOR = "\n"  # not a word character, so no word spans two texts
CODE_POINT_BITS = 21  # every code point is below 2^21; the position in its word goes above
ZERO = ord("0")


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele et al. 2014): every input bit flips half the output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def fold_words(characters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """uint64 hash of each word, given the code points of the words one after another and the
    number of code points (at least one) in each word."""
    characters = characters.astype(np.uint64)
    first = np.cumsum(lengths) - lengths  # each word's first character in `characters`
    position = (np.arange(len(characters)) - np.repeat(first, lengths)).astype(np.uint64)
    # mix64 is a bijection, so distinct (code point, position) pairs give distinct terms, and
    # the position makes the sum order-sensitive ("ab" != "ba"). Two different words then share
    # a sum mod 2^64 with probability ~2^-64 (taking mix64 outputs as random), far below the
    # 2^-32 of the 32-bit shingle hash built from these. The final mix hides the sum's
    # linearity (h(ab) + h(cd) = h(ad) + h(cb) before it) from the XOR-and-mix shingle fold,
    # and adds the length.
    terms = mix64(characters | (position << np.uint64(CODE_POINT_BITS)))
    sums = np.add.reduceat(terms, first) if len(first) else np.zeros(0, dtype=np.uint64)
    return mix64(sums ^ np.asarray(lengths).astype(np.uint64))


def _word_code(point: int) -> int:
    char = chr(point)
    if not (char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")):
        return 0  # U+0000 is no word character, so 0 is free to mean "not in a word"
    return ZERO if char.isdecimal() else point


@functools.cache
def word_codes() -> np.ndarray:
    """uint32 per code point: 0 outside words, "0" for a decimal digit (FineWeb's digit fold),
    else the code point itself. Built on first use, once per process (~0.2 s, 4.5 MB)."""
    return np.fromiter(map(_word_code, range(CODE_POINTS)), dtype=np.uint32, count=CODE_POINTS)


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of every text's normalised words, concatenated in order, and the number of
    words of each text. A word's hash depends on the word alone, never on the batch."""
    normalized = [simplified(text) for text in texts]
    # surrogatepass: a lone surrogate (text decoded with surrogateescape) is one code unit too.
    joined = SEPARATOR.join(normalized).encode("utf-32-le", "surrogatepass")
    points = np.frombuffer(joined, dtype=np.uint32)
    codes = word_codes()[points]
    solo_table, mark_table = solo_and_mark_codes()
    in_word = np.concatenate([codes != 0, [False]])  # a position after the last one
    solo = np.concatenate([solo_table[points], [False]])
    mark = np.concatenate([mark_table[points], [False]])
    before = np.concatenate([[False], in_word[:-1]])
    # whether the word before a position began with a letter of an unspaced script: the last
    # character before it that is no mark is one (marks after one stay in its word)
    places = np.arange(len(in_word))
    last_letter = np.maximum.accumulate(np.where(mark, -1, places))
    solo_word_before = np.concatenate([[False], (last_letter >= 0) & solo[last_letter]])[:-1]
    starts_at = in_word & (~before | solo | (solo_word_before & ~mark))
    starts = np.flatnonzero(starts_at)
    ends = np.flatnonzero(before & (~in_word | starts_at))
    lengths = ends - starts
    hashes = fold_words(codes[in_word[:-1]], lengths)
    sizes = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized)) + 1
    first_word = np.searchsorted(starts, np.cumsum(sizes) - sizes)  # of each text
    return hashes, np.diff(first_word, append=len(starts))
