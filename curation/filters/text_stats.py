"""Measurements the heuristic filters share: lines, repeated items, line-final punctuation.

Gopher, C4 and FineWeb all judge a page line by line. Here a line is the text between
newlines, surrounding spaces ignored and blank lines not counted, for all three; DataTrove
keeps blank lines in FineWeb's and Gopher's line counts and tests unstripped line ends, so a
page with many blank lines or trailing spaces there scores lower on punctuated and short
lines than here (deliberate: blank lines separate, they say nothing). FineWeb's newlines per
word is no line count: it counts every newline, as DataTrove does. What ends a line or a
sentence (terminal punctuation) lives here once as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from refinery.config import ConfigError

# Marks that end a line of prose in common scripts. Latin/Cyrillic ". ! ?" and the end
# quotation marks " and ' (C4 keeps lines ending in these, Raffel et al. 2020 §2.2, as the
# DataTrove released with FineWeb in 2024 did; later versions leave them out), closing
# quotes ”’»」』 and German's “‘« („Nein.“, »Nein.«), and the ellipsis (not in DataTrove's
# list), CJK
# full-width 。！？, Devanagari danda । and double danda ॥, Arabic question mark ؟, Urdu full
# stop ۔, Armenian full stop ։ and Ethiopic full stop ።.
TERMINAL_PUNCTUATION = [
    ".", "!", "?", '"', "'", "”", "’", "»", "“", "‘", "«", "」", "』", "…",
    "。", "！", "？", "।", "॥", "؟", "۔", "։", "።",
]  # fmt: skip

# Closing quotes and brackets: they end a line after a sentence (`He said "no."`) but do not
# end a sentence on their own.
CLOSERS = frozenset("\"'”’»“‘«」』)]")
ELLIPSES = ("...", "…")


def content_lines(text: str) -> list[str]:
    """The page's lines, stripped, blank ones left out (they separate, they say nothing)."""
    return [line for line in map(str.strip, text.split("\n")) if line]


def repeated(items: list[str]) -> tuple[int, int]:
    """(how many, how many characters) of the items that repeat an earlier item: every copy
    after the first, which is what removing the repetition would remove."""
    counts = Counter(items)
    if len(counts) == len(items):
        return 0, 0
    chars = sum(len(item) * (n - 1) for item, n in counts.items() if n > 1)
    return len(items) - len(counts), chars


class PunctuationByLanguage:
    """The terminal marks of a document's language: one list for every language unless a
    language has its own (`terminal_punctuation_by_language` in the configs)."""

    def __init__(self, default: Iterable[str], by_language: dict[str, list[str]]):
        self.default = tuple(default)
        self.by_language = {lang: tuple(marks) for lang, marks in by_language.items()}

    def marks(self, lang: str) -> tuple[str, ...]:
        return self.by_language.get(lang, self.default)


def check_fractions(section: str, **values: float) -> None:
    """Each value is a fraction in [0, 1], or a ConfigError naming `section.key`."""
    for key, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{section}.{key} must be between 0 and 1, got {value}")


def check_at_least(section: str, minimum: float, **values: float) -> None:
    """Each value is >= `minimum`, or a ConfigError naming `section.key`."""
    for key, value in values.items():
        if value < minimum:
            raise ConfigError(f"{section}.{key} must be at least {minimum}, got {value}")


def check_marks(section: str, default: list[str], by_language: dict[str, list[str]]) -> None:
    """Terminal punctuation lists are non-empty lists of non-empty marks."""
    lists = {"terminal_punctuation": default} | {
        f"terminal_punctuation_by_language.{lang}": marks for lang, marks in by_language.items()
    }
    for key, marks in lists.items():
        if not marks or not all(marks):
            raise ConfigError(f"{section}.{key} must list non-empty marks, got {marks}")
