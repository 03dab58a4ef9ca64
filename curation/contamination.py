"""Benchmark contamination: word 13-grams shared by evaluation items and training documents.

Following GPT-3 (Brown et al. 2020, appendix C) and lm-evaluation-harness's decontamination,
text is normalised (see `normalise`) and an item counts as contaminated when any of its word
13-grams occurs in a training document. An item's text is its question followed by each
answer choice in turn (`question choice_i`), also with the choice's letter or "answer"
between them (`question B choice_i`, `question Answer: choice_i`), so a page quoting the
question, the question with an answer, or the item as an evaluation prompt lists it, all
match.

Template n-grams are ignored: an n-gram shared by more than MAX_ITEMS_PER_NGRAM items is the
benchmark's boilerplate (every MMLU moral_scenarios item opens with the same 28-word question),
and a page quoting it would otherwise flag them all. GPT-3 made the same call on the training
side, ignoring 13-grams found in more than 10 training documents as common phrases.

A text of SHORTEST to 12 words (a short question with its choice) is one n-gram whole, as
GPT-3 shortened n for short items down to 8 words; documents are then hashed at each length
the index holds. An item whose question, or its question with one of the choices (perhaps
the right one), has no n-gram of its own (fewer than SHORTEST words, or only template) cannot
be checked: it is reported as `unchecked`, never as clean.

N-grams are compared as 64-bit hashes, so documents' n-grams can be joined in Spark without
carrying strings; a collision needs ~2^32 distinct n-grams to be likely. A document's are
computed by numpy: each word is hashed once (dedup's word fold), and an n-gram's hash is a
mixed sum of its words' hashes, each mixed with its place in the n-gram, so the sums of every
length come from one running sum (per document, normalisation included, about 7 times
faster than hashing each n-gram's string: docs/BENCHMARKS.md).

Pure functions; the Spark glue is curation/spark/contamination.py.
"""

from __future__ import annotations

import contextlib
import gc
import html
import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.dedup.wordhash import fold_words, mix64

NGRAM = 13  # GPT-3 appendix C; lm-evaluation-harness `decontamination/janitor.py`
SHORTEST = 8  # GPT-3 appendix C: shorter items are checked whole, down to 8 words
MAX_ITEMS_PER_NGRAM = 10  # GPT-3 appendix C's "more than 10 documents" cut, on the item side
GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd: spreads the place numbers

_TABLE = None  # str.translate table over every code point, built once
APOSTROPHES = "'\u2019\u02bc"  # deleted, so "don't", "don’t" and "dont" are one word


def _table() -> dict[int, str | None]:
    """Punctuation and symbols become spaces ("a,b" and "a, b", "x-y" and "x - y", "x+y" and
    "x + y", a hyphen and the minus sign give the same words); apostrophes and format
    characters (soft hyphen, zero-width space) are deleted."""
    global _TABLE
    if _TABLE is None:
        _TABLE = {}
        for code in range(0x110000):
            category = unicodedata.category(chr(code))
            if category == "Cf" or chr(code) in APOSTROPHES:
                _TABLE[code] = None
            elif category.startswith(("P", "S")):
                _TABLE[code] = " "
    return _TABLE


def normalise(text: str) -> list[str]:
    """Words to compare: HTML entities an extraction left decoded, NFKC (composed accents,
    full-width forms, ligatures, NBSP), lowercased, punctuation and symbols as spaces,
    apostrophes and format characters deleted, split on whitespace."""
    text = unicodedata.normalize("NFKC", html.unescape(text)).lower()
    return text.translate(_table()).split()


def ngrams(words: Sequence[str], n: int = NGRAM) -> list[str]:
    """Every run of `n` consecutive words, space-joined; none when there are fewer words."""
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def hash_words(words: Sequence[str]) -> np.ndarray:
    """uint64 hash of each word (non-empty, as `normalise` gives them): dedup's fold of its
    code points, over a list of words where dedup's `word_hashes` finds them in texts."""
    # surrogatepass: a lone surrogate (text decoded with surrogateescape) is one code unit too.
    joined = "".join(words).encode("utf-32-le", "surrogatepass")
    sizes = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    return fold_words(np.frombuffer(joined, dtype=np.uint32), sizes)


def _placed(hashes: np.ndarray, places: np.ndarray | np.uint64) -> np.ndarray:
    """A word's term at its place in an n-gram: summing these makes "a b" differ from "b a"."""
    return mix64(hashes + np.asarray(places, dtype=np.uint64) * GOLDEN)


def _finished(sums: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """The n-gram hashes as Spark's signed bigint; the final mix hides the sum's linearity."""
    return mix64(sums ^ np.asarray(n, dtype=np.uint64)).view(np.int64)


def gram_hashes(grams: Sequence[str]) -> list[int]:
    """The hash of each space-joined n-gram (as `grams` gives them), the one
    `text_ngram_hashes` gives the same words in a text."""
    if not grams:
        return []
    # Arrow splits and numbers the words in C++: overlapping n-grams share their words, and
    # each distinct word is hashed once (bytes: a lone surrogate from a JSON escape survives)
    encoded = [gram.encode("utf-8", "surrogatepass") for gram in grams]
    split = pc.split_pattern(pa.array(encoded, pa.large_binary()), b" ")  # may pass 2 GiB
    sizes = pc.list_value_length(split).to_numpy().astype(np.int64)
    words = pc.list_flatten(split).dictionary_encode()
    first = np.cumsum(sizes) - sizes
    places = np.arange(len(words)) - np.repeat(first, sizes)
    distinct = [word.decode("utf-8", "surrogatepass") for word in words.dictionary.to_pylist()]
    hashes = hash_words(distinct)[words.indices.to_numpy()]
    sums = np.add.reduceat(_placed(hashes, places), first)
    return _finished(sums, sizes).tolist()


def grams(words: Sequence[str], n: int, shortest: int) -> list[str]:
    """The n-grams of `words`; a text of `shortest` to n - 1 words is one gram, whole."""
    if len(words) >= n or len(words) < shortest:
        return ngrams(words, n)
    return [" ".join(words)]


def text_ngram_hashes(text: str, lengths: Iterable[int] = (NGRAM,)) -> np.ndarray:
    """The distinct hashed n-grams of `text` for each n in `lengths` (an index's `lengths`),
    sorted int64. The sums of the n-grams starting at each word grow one place at a time, and
    those of a wanted length are kept: no n-gram string is ever built."""
    hashes = hash_words(normalise(text))
    wanted = set(lengths)
    count = len(hashes)
    sums = np.zeros(count, dtype=np.uint64)
    found = [np.zeros(0, dtype=np.int64)]
    for place in range(min(max(wanted, default=0), count)):
        sums[: count - place] += _placed(hashes[place:], np.uint64(place))
        if place + 1 in wanted:
            found.append(_finished(sums[: count - place], place + 1))
    out = np.sort(np.concatenate(found))
    return out[np.diff(out, prepend=out[:1] - 1) != 0]  # distinct (np.unique's hashing is slower)


@dataclass(frozen=True)
class EvalItem:
    """One evaluation item as the check sees it: where it comes from and its text."""

    benchmark: str  # the benchmark file's stem
    key: str  # unique across benchmarks: refinery.mc_data's `<stem>:<line>`
    question: str
    choices: tuple[str, ...] = ()


def item_ngrams(item: EvalItem, n: int, shortest: int) -> tuple[set[str], list[set[str]], set[str]]:
    """The n-grams (`grams`) of the question alone, of `question choice_i` for each choice,
    and those the same text has only with the choice's letter or "answer" between question
    and choice, as evaluation prompts write items. The question's own n-grams are shared by
    every choice, so only those reaching into a choice (the question's last n-1 words + the
    choice) are a choice's: a long AGIEval passage is not re-hashed once per option. A tail
    shorter than the question is not a whole text, so it is never one short gram."""
    question = normalise(item.question)
    tail = question[max(0, len(question) - (n - 1)) :] if n > 1 else []
    whole = shortest if len(tail) == len(question) else n
    per_choice, labelled = [], set()
    for letter, choice in zip(string.ascii_lowercase, item.choices, strict=False):
        words = normalise(choice)
        per_choice.append(set(grams(tail + words, n, whole)))
        for label in ([letter], ["answer"]):
            labelled.update(grams(tail + [*label, *words], n, whole))
    own = set(grams(question, n, shortest))
    return own, per_choice, labelled - own.union(*per_choice)


@dataclass
class ItemIndex:
    """Hashed item n-grams -> the items that have them, plus what could not be checked."""

    items: dict[str, list[str]]  # benchmark -> keys of its checked items
    unchecked: dict[str, list[str]]  # benchmark -> keys of items with no n-gram of their own
    ngrams: dict[int, list[str]]  # n-gram hash -> keys of the items that contain it
    template_ngrams: int  # n-grams ignored as shared by more than max_items items
    lengths: tuple[int, ...]  # the n-gram lengths in words the index holds: hash documents at each


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: an index allocates about a million small sets and lists
    and keeps them all, which it would scan again and again (half of a build's time on
    ../shared/data/mc_eval) to find no cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_index(
    items: Iterable[EvalItem],
    n: int = NGRAM,
    max_items: int = MAX_ITEMS_PER_NGRAM,
    shortest: int = SHORTEST,
) -> ItemIndex:
    with _no_cycle_collection():
        return _build_index(items, n, max_items, shortest)


def _build_index(items: Iterable[EvalItem], n: int, max_items: int, shortest: int) -> ItemIndex:
    plain: dict[str, set[int]] = {}
    parts: dict[str, list[set[int]]] = {}  # the question's n-grams, then each choice's
    labelled: dict[str, set[int]] = {}
    benchmark_of: dict[str, str] = {}
    lengths = {n}
    texts: dict[str, list[set[str]]] = {}  # the question's n-grams, each choice's, the prompted
    for item in items:
        if item.key in texts:
            raise ValueError(f"evaluation item {item.key} appears twice")
        question, choices, prompted = item_ngrams(item, n, min(shortest, n))
        texts[item.key] = [question, *choices, prompted]
        lengths.update(g.count(" ") + 1 for g in question.union(*choices, prompted))
        benchmark_of[item.key] = item.benchmark
    # one numpy pass over every item's n-grams, then handed back in the same order
    hashed = iter(gram_hashes([g for groups in texts.values() for group in groups for g in group]))
    for key, groups in texts.items():
        *parts[key], labelled[key] = [{next(hashed) for _ in group} for group in groups]
        plain[key] = set().union(*parts[key])
    holders: dict[int, list[str]] = defaultdict(list)
    for hashes in (plain, labelled):
        for key, own in hashes.items():
            for h in own:
                holders[h].append(key)
    template = {h for h, keys in holders.items() if len(keys) > max_items}
    checked: dict[str, list[str]] = defaultdict(list)
    unchecked: dict[str, list[str]] = defaultdict(list)
    for key, (question, *choices) in parts.items():
        # checked: its text with the right answer, whichever that is, has an n-gram of its own
        # (the question's, or every choice's: a short question whose answer is short is not)
        whole = question - template or (choices and all(c - template for c in choices))
        (checked if whole else unchecked)[benchmark_of[key]].append(key)
    for benchmark in unchecked:
        checked.setdefault(benchmark, [])
    # An item is checked, and so can be hit, by the n-grams of its own text: one too short
    # for them is not made checkable by the labels alone, nor by its longer choices (the
    # share would count it as clean when its text with the right answer is in a document).
    unchecked_keys = {key for keys in unchecked.values() for key in keys}
    index = {
        h: [key for key in keys if key not in unchecked_keys]
        for h, keys in holders.items()
        if h not in template
    }
    index = {h: keys for h, keys in index.items() if keys}
    return ItemIndex(dict(checked), dict(unchecked), index, len(template), tuple(sorted(lengths)))


def overlapping_items(text: str, index: ItemIndex) -> list[str]:
    """Keys of the items sharing at least one n-gram with `text`, sorted."""
    hashes = text_ngram_hashes(text, index.lengths).tolist()
    return sorted({key for h in hashes for key in index.ngrams.get(h, ())})


def contamination_report(index: ItemIndex, contaminated: Iterable[str]) -> dict[str, Any]:
    """Per benchmark: items checked, unchecked, contaminated (their keys) and the share of
    checked items that are contaminated (None when none could be checked: not clean)."""
    hit = set(contaminated)
    report: dict[str, Any] = {}
    for benchmark in sorted(index.items):
        keys = index.items[benchmark]
        found = sorted(k for k in keys if k in hit)
        report[benchmark] = {
            "items": len(keys),
            "unchecked": len(index.unchecked.get(benchmark, [])),
            "contaminated": len(found),
            "share": len(found) / len(keys) if keys else None,
            "contaminated_items": found,
        }
    return report
