"""Gopher's quality and repetition rules (Rae et al. 2021, "Scaling Language Models:
Methods, Analysis & Insights from Training Gopher", appendix A.1.1 and table A1).

Words are whitespace-separated, as in the paper (the quality rules leave out tokens without a
letter or digit, such as table rules and dashes); lines are the non-blank lines of the text and
paragraphs the blocks between blank lines. A "duplicate" is every copy of a line, paragraph or
n-gram after its first occurrence: the share of the page that removing repetition would remove.
Character fractions are of the whole text, whitespace included, as DataTrove divides them
(the duplicated characters are the words' or the stripped lines' and paragraphs'): leaving the
whitespace out made every fraction 15-20% larger and rejected a WikiText-2 featured article as
dup_9gram at 0.113 (0.094 of the text). Duplicate n-grams count each character once however
many repeats cover it, as the paper words it; DataTrove counts repeats greedily, n words on
after each, which covers somewhat less.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, compress, count, filterfalse, repeat
from operator import eq, mul, ne

from curation.filters.base import Document, DocumentFilter, document_language, words
from curation.filters.text_stats import (
    ELLIPSES,
    check_at_least,
    check_fractions,
    content_lines,
    repeated,
)
from refinery.config import ConfigError

PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
LETTER_OR_DIGIT = re.compile(r"[^\W_]")  # \w is letters, digits and "_"
# Punctuation around a word that does not make it another word ("The", "(with,").
WORD_PUNCTUATION = ".,;:!?\"'()[]“”‘’«»"


@dataclass
class GopherQualityConfig:
    # Rae et al. 2021, appendix A.1.1: keep 50..100,000 words with a mean length of 3..10.
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    # "symbol-to-word ratio greater than 0.1 for either the hash symbol or the ellipsis"
    max_hash_word_ratio: float = 0.1
    max_ellipsis_word_ratio: float = 0.1
    # "more than 90% of lines starting with a bullet point, or more than 30% ending with an
    # ellipsis"
    max_bullet_line_fraction: float = 0.9
    max_ellipsis_line_fraction: float = 0.3
    # Marks a bulleted line starts with (the paper names no list).
    bullets: list[str] = field(
        default_factory=lambda: ["•", "‣", "◦", "⁃", "∙", "●", "○", "■", "□", "▪", "-", "*"]
    )
    # "require that 80% of words in a document contain at least one alphabetic character"
    min_alpha_word_fraction: float = 0.8
    # "at least two of the following English words: the, be, to, of, and, that, have, with";
    # counted as distinct words, case-insensitively, punctuation around a word ignored. The
    # rule applies to the languages listed here only, so kept non-English documents are not
    # rejected for lacking English stop words; add a language with its own list.
    min_stop_words: int = 2
    stop_words: dict[str, list[str]] = field(
        default_factory=lambda: {"en": ["the", "be", "to", "of", "and", "that", "have", "with"]}
    )

    def __post_init__(self) -> None:
        section = "filter.gopher_quality"
        check_at_least(section, 1, min_words=self.min_words)
        check_at_least(section, self.min_words, max_words=self.max_words)
        check_at_least(section, 0, min_mean_word_length=self.min_mean_word_length)
        check_at_least(
            section, self.min_mean_word_length, max_mean_word_length=self.max_mean_word_length
        )
        check_at_least(section, 0, max_hash_word_ratio=self.max_hash_word_ratio)
        check_at_least(section, 0, max_ellipsis_word_ratio=self.max_ellipsis_word_ratio)
        check_at_least(section, 0, min_stop_words=self.min_stop_words)
        check_fractions(
            section,
            max_bullet_line_fraction=self.max_bullet_line_fraction,
            max_ellipsis_line_fraction=self.max_ellipsis_line_fraction,
            min_alpha_word_fraction=self.min_alpha_word_fraction,
        )
        if not all(self.bullets):
            raise ConfigError(f"{section}.bullets must not hold an empty string")
        for lang, stop_words in self.stop_words.items():
            if len({word.lower() for word in stop_words}) < self.min_stop_words:
                raise ConfigError(
                    f"{section}.stop_words.{lang} lists fewer distinct words than "
                    f"min_stop_words ({self.min_stop_words}): no document could pass"
                )


class GopherQualityFilter(DocumentFilter):
    """Rejects pages that do not read like prose: too short or long, odd word lengths, symbol
    or list-heavy, mostly non-words, or (in a language with a stop-word list) no function words.
    """

    name = "gopher_quality"

    def __init__(self, config: GopherQualityConfig | None = None):
        self.config = config or GopherQualityConfig()
        self.bullets = tuple(self.config.bullets)
        self.stop_words = {
            lang: frozenset(w.lower() for w in ws) for lang, ws in self.config.stop_words.items()
        }

    def filter(self, doc: Document) -> str | None:
        c = self.config
        text = doc["text"]
        tokens = words(text)
        counts = WordCounts.of(tokens)
        n_words = counts.words
        if n_words < max(c.min_words, 1):
            return self.reason("min_words")
        if n_words > c.max_words:
            return self.reason("max_words")
        mean_length = counts.chars / n_words
        if not c.min_mean_word_length <= mean_length <= c.max_mean_word_length:
            return self.reason("mean_word_length")
        if text.count("#") / n_words > c.max_hash_word_ratio:
            return self.reason("hash_ratio")
        if sum(map(text.count, ELLIPSES)) / n_words > c.max_ellipsis_word_ratio:
            return self.reason("ellipsis_ratio")
        lines = content_lines(text)  # not empty: there are words
        bulleted = sum(line.startswith(self.bullets) for line in lines)
        if bulleted / len(lines) > c.max_bullet_line_fraction:
            return self.reason("bullet_lines")
        trailing_off = sum(line.endswith(ELLIPSES) for line in lines)
        if trailing_off / len(lines) > c.max_ellipsis_line_fraction:
            return self.reason("ellipsis_lines")
        if counts.with_letters / counts.alpha_denominator < c.min_alpha_word_fraction:
            return self.reason("alpha_words")
        stop_words = self.stop_words.get(document_language(doc))
        if stop_words is not None and not self._has_stop_words(tokens, stop_words):
            return self.reason("stop_words")
        return None

    def _has_stop_words(self, tokens: list[str], stop_words: frozenset[str]) -> bool:
        """At least `min_stop_words` distinct stop words; stops reading once they are found."""
        found: set[str] = set()
        for token in tokens:
            word = token.lower()
            if word not in stop_words:
                word = word.strip(WORD_PUNCTUATION)
            if word in stop_words:
                found.add(word)
                if len(found) >= self.config.min_stop_words:
                    return True
        return len(found) >= self.config.min_stop_words


@dataclass(frozen=True)
class WordCounts:
    """Words, their characters, and words holding a letter of any script (str.isalpha). A
    token without a letter or digit (a table rule `|---|` from extraction, a dash, a lone
    bullet, an emoji) is markup, not a word, for the word count and mean word length, as
    DataTrove counts them. The alpha-word fraction is the paper's over whitespace words, of
    which only those of punctuation and ASCII symbols are left out (`—`, `|`, `|---|`, a
    table's rules as extraction writes them): emoji and other symbols count against it, or a
    page of them could never fail it."""

    words: int
    chars: int
    with_letters: int
    alpha_denominator: int  # tokens that are not punctuation alone

    @classmethod
    def of(cls, tokens: list[str]) -> WordCounts:
        # All-letter tokens are most tokens and pass through C loops; only the rest are read.
        rest = list(filterfalse(str.isalpha, tokens))
        markup = list(filterfalse(LETTER_OR_DIGIT.search, rest))
        lettered = len(tokens) - len(rest) + sum(1 for t in rest if any(map(str.isalpha, t)))
        chars = sum(map(len, tokens)) - sum(map(len, markup))
        punctuation = sum(1 for t in markup if all(map(_is_punctuation, t)))
        return cls(len(tokens) - len(markup), chars, lettered, len(tokens) - punctuation)


def _is_punctuation(char: str) -> bool:
    """Punctuation of any script, an ASCII symbol (`|`, `+`, `=` of a table's rules), or an
    invisible format character (a zero-width space, a soft hyphen) left in a text input."""
    category = unicodedata.category(char)
    return char.isascii() or category[0] == "P" or category == "Cf"


@dataclass
class GopherRepetitionConfig:
    # Rae et al. 2021, table A1 (the maximum of each fraction a kept document may have).
    max_dup_line_fraction: float = 0.30
    max_dup_para_fraction: float = 0.30
    max_dup_line_char_fraction: float = 0.20
    max_dup_para_char_fraction: float = 0.20
    # Characters in the most frequent word n-gram, n = 2, 3, 4.
    max_top_2gram_char_fraction: float = 0.20
    max_top_3gram_char_fraction: float = 0.18
    max_top_4gram_char_fraction: float = 0.16
    # Characters in all repeated word n-grams, n = 5 .. 10.
    max_dup_5gram_char_fraction: float = 0.15
    max_dup_6gram_char_fraction: float = 0.14
    max_dup_7gram_char_fraction: float = 0.13
    max_dup_8gram_char_fraction: float = 0.12
    max_dup_9gram_char_fraction: float = 0.11
    max_dup_10gram_char_fraction: float = 0.10

    def __post_init__(self) -> None:
        check_fractions("filter.gopher_repetition", **vars(self))


class GopherRepetitionFilter(DocumentFilter):
    """Rejects pages that repeat themselves: duplicated lines or paragraphs, one n-gram that
    dominates the text, or long n-grams that recur (templates, spam, generated lists)."""

    name = "gopher_repetition"

    def __init__(self, config: GopherRepetitionConfig | None = None):
        c = self.config = config or GopherRepetitionConfig()
        self.top_ngram_limits = [
            (2, c.max_top_2gram_char_fraction),
            (3, c.max_top_3gram_char_fraction),
            (4, c.max_top_4gram_char_fraction),
        ]
        dup_limits = [
            c.max_dup_5gram_char_fraction,
            c.max_dup_6gram_char_fraction,
            c.max_dup_7gram_char_fraction,
            c.max_dup_8gram_char_fraction,
            c.max_dup_9gram_char_fraction,
            c.max_dup_10gram_char_fraction,
        ]
        # (n, limit, floor): the floor is the lowest limit of n and every larger n. Repeated
        # (n+1)-grams cover a subset of what repeated n-grams cover, so once the fraction is
        # under the floor no later rule can fire and the larger n are not counted.
        self.dup_ngram_limits = [
            (5 + i, limit, min(dup_limits[i:])) for i, limit in enumerate(dup_limits)
        ]

    def filter(self, doc: Document) -> str | None:
        c = self.config
        text = doc["text"]
        lines = content_lines(text)
        if lines:
            count, chars = repeated(lines)
            if count / len(lines) > c.max_dup_line_fraction:
                return self.reason("dup_line_fraction")
            if chars / len(text) > c.max_dup_line_char_fraction:
                return self.reason("dup_line_char_fraction")
        paragraphs = [p for p in map(str.strip, PARAGRAPH_BREAK.split(text)) if p]
        if paragraphs:
            count, chars = repeated(paragraphs)
            if count / len(paragraphs) > c.max_dup_para_fraction:
                return self.reason("dup_para_fraction")
            if chars / len(text) > c.max_dup_para_char_fraction:
                return self.reason("dup_para_char_fraction")
        tokens = words(text)
        if not tokens:
            return None
        # Prefix sums of word lengths: the characters of tokens[i:j] in O(1).
        offsets = list(accumulate(map(len, tokens), initial=0))
        total = len(text)
        # What the top n-gram covers is made of occurrences of its (at most n distinct) words,
        # so the n words covering the most characters bound it. Ordinary prose stays far under
        # the limits that way and skips counting n-grams.
        word_counts = Counter(tokens)
        weights = sorted(map(mul, word_counts.values(), map(len, word_counts)), reverse=True)
        heaviest = list(accumulate(weights[: self.top_ngram_limits[-1][0]]))
        for n, limit in self.top_ngram_limits:
            if heaviest[min(n, len(heaviest)) - 1] / total <= limit:
                continue
            if top_ngram_chars(tokens, n, offsets) / total > limit:
                return self.reason(f"top_{n}gram")
        for n, limit, floor in self.dup_ngram_limits:
            fraction = repeated_ngram_chars(tokens, n, offsets) / total
            if fraction > limit:
                return self.reason(f"dup_{n}gram")
            if fraction <= floor:
                break
        return None


def ngrams(tokens: list[str], n: int) -> zip:
    """The word n-grams of `tokens` as tuples, built in C."""
    return zip(*(tokens[i:] for i in range(n)), strict=False)  # shorter tails end it


def top_ngram_chars(tokens: list[str], n: int, offsets: list[int]) -> int:
    """Characters covered by the most frequent n-gram (Gopher: "the fraction of characters
    contained within the most frequently-occurring n-gram"); 0 when no n-gram repeats.
    Among equally frequent n-grams, the first in the text; overlapping occurrences
    ("ha ha ha") count their shared words once."""
    counts = Counter(ngrams(tokens, n))
    if not counts:
        return 0
    [(top, times)] = counts.most_common(1)
    if times < 2:
        return 0
    if not any(top[k:] == top[: n - k] for k in range(1, n)):
        return times * sum(map(len, top))  # it cannot overlap itself: occurrences are disjoint
    starts = compress(count(), map(eq, ngrams(tokens, n), repeat(top)))
    return span_chars(starts, n, offsets)


def repeated_ngram_chars(tokens: list[str], n: int, offsets: list[int]) -> int:
    """Characters of the words covered by repeated n-grams (Gopher: "the fraction of characters
    contained within all duplicate n-grams"): every occurrence after an n-gram's first, words
    shared by overlapping occurrences counted once."""
    first: dict[tuple[str, ...], int] = {}
    # Where the n-gram at each position first occurs: elsewhere than here means a repeat.
    firsts = map(first.setdefault, ngrams(tokens, n), count())
    return span_chars(compress(count(), map(ne, firsts, count())), n, offsets)


def span_chars(starts: Iterable[int], n: int, offsets: list[int]) -> int:
    """Characters of the words in the union of the n-word spans at `starts` (ascending)."""
    covered = end = 0
    for start in starts:
        covered += offsets[start + n] - offsets[max(start, end)]
        end = start + n
    return covered
