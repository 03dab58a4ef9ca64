"""C4's cleaning rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a
Unified Text-to-Text Transformer", §2.2), line-level where the original is: lines that fail
a line rule are dropped, then the page keeps only those lines if enough sentences are left.
"lorem ipsum" and a curly bracket reject the page wherever they are, dropped lines included,
as the paper words it ("removed any page that contained a curly bracket"); TFDS's c4_utils
and DataTrove look at the kept lines only.

The bad-words rule of C4 is the `badwords` step; deduplication is the `dedup` stage.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from curation.filters.base import Document, DocumentFilter, document_language
from curation.filters.text_stats import (
    CLOSERS,
    ELLIPSES,
    TERMINAL_PUNCTUATION,
    PunctuationByLanguage,
    check_at_least,
    check_marks,
    content_lines,
)
from refinery.config import ConfigError

# "citation markers (e.g. [1], [citation needed], etc.)" left by Wikipedia pages.
CITATION = re.compile(r"\[(?:\d+|edit|citation needed)\]", re.IGNORECASE)


@dataclass
class C4Config:
    # The paper "discarded any page with fewer than 3 sentences and only retained lines that
    # contained at least 5 words" (TFDS c4_utils alike); these defaults, 5 sentences (counted
    # on the kept lines) and 3 words, are DataTrove's, with which FineWeb ran C4's rules. C4 as
    # published: min_sentences=3 min_words_per_line=5 filter_no_terminal_punct=true.
    min_sentences: int = 5
    min_words_per_line: int = 3
    # Lines holding a word longer than this are dropped (C4's released code, TFDS c4_utils).
    max_word_chars: int = 1000
    # "removed any page where the phrase 'lorem ipsum' appeared" (placeholder text).
    reject_lorem_ipsum: bool = True
    # "removed any pages that contained a curly bracket" (code, which natural text lacks).
    reject_curly_bracket: bool = True
    # "removed any line with the word Javascript" (enable-Javascript warnings).
    drop_javascript_lines: bool = True
    # "removed any lines containing the strings ..." (policy notices); matched lower-cased.
    policy_phrases: list[str] = field(
        default_factory=lambda: [
            "terms of use",
            "privacy policy",
            "cookie policy",
            "uses cookies",
            "use of cookies",
            "use cookies",
        ]
    )
    # "we removed any such [citation] markers"
    remove_citations: bool = True
    # "only retained lines that ended in a terminal punctuation mark (i.e. a period,
    # exclamation mark, question mark, or end quotation mark)"; a line ending in an ellipsis
    # is cut off, not ended (TFDS c4_utils). Other scripts' marks are in the default list.
    # Off by default, as FineWeb runs C4 (DataTrove's filter_no_terminal_punct=False): the
    # rule removed headings, list items and captions, ~30% of tokens, and the page-level
    # fineweb:line_punct_ratio judges the same signal. True is C4 as published (with the
    # paper's sentence and word counts above).
    filter_no_terminal_punct: bool = False
    terminal_punctuation: list[str] = field(default_factory=lambda: list(TERMINAL_PUNCTUATION))
    terminal_punctuation_by_language: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        section = "filter.c4"
        check_at_least(section, 1, min_sentences=self.min_sentences)
        check_at_least(section, 0, min_words_per_line=self.min_words_per_line)
        check_at_least(section, 1, max_word_chars=self.max_word_chars)
        if not all(self.policy_phrases):
            raise ConfigError(f"{section}.policy_phrases must not hold an empty string")
        check_marks(section, self.terminal_punctuation, self.terminal_punctuation_by_language)
        for marks in [self.terminal_punctuation, *self.terminal_punctuation_by_language.values()]:
            if not sentence_marks(marks):
                raise ConfigError(
                    f"{section}: terminal punctuation {marks} has no sentence mark (only "
                    "quotes or ellipses), so no page could reach min_sentences"
                )


class C4Filter(DocumentFilter):
    """Keeps the lines of a page that read as sentences, then rejects the page if it holds
    placeholder text or code, or fewer than `min_sentences` sentences remain."""

    name = "c4"

    def __init__(self, config: C4Config | None = None):
        c = self.config = config or C4Config()
        self.punctuation = PunctuationByLanguage(
            c.terminal_punctuation, c.terminal_punctuation_by_language
        )
        javascript = ["javascript"] if c.drop_javascript_lines else []
        self.line_phrases = javascript + [phrase.lower() for phrase in c.policy_phrases]
        self._sentence_ends: dict[tuple[str, ...], re.Pattern[str]] = {}

    def filter(self, doc: Document) -> str | None:
        c = self.config
        text = doc["text"]
        lowered = text.lower()
        if c.reject_lorem_ipsum and "lorem ipsum" in lowered:
            return self.reason("lorem_ipsum")
        if c.reject_curly_bracket and "{" in text:
            return self.reason("curly_bracket")
        marks = self.punctuation.marks(document_language(doc))
        # Lines are searched only for the phrases the page holds at all (usually none), once
        # citation markers are gone, as they are from the lines ("uses[3] cookies").
        if c.remove_citations and "[" in text:
            lowered = CITATION.sub("", lowered)
        phrases = [phrase for phrase in self.line_phrases if phrase in lowered]
        kept: list[str] = []
        dropped: Counter[str] = Counter()
        for line in content_lines(text):
            if c.remove_citations and "[" in line:
                line = CITATION.sub("", line).strip()
            rule = self._line_rule(line, marks, phrases)
            if rule is None:
                kept.append(line)
            else:
                dropped[rule] += 1
        # counted on every page, as DataTrove does: also the one whose drops leave too few
        for rule, n in sorted(dropped.items()):
            self.count(f"c4_lines_dropped:{rule}", n)
        if self._count_sentences(kept, marks) < c.min_sentences:
            return self.reason("min_sentences")
        doc["text"] = "\n".join(kept)
        return None

    def _line_rule(self, line: str, marks: tuple[str, ...], phrases: list[str]) -> str | None:
        """The first line rule `line` fails, or None to keep it; `phrases` are the lower-cased
        line-dropping phrases to look for."""
        c = self.config
        if c.filter_no_terminal_punct and (not line.endswith(marks) or line.endswith(ELLIPSES)):
            return "no_terminal_punct"
        if len(line.split(maxsplit=c.min_words_per_line)) < c.min_words_per_line:
            return "min_words"
        if len(line) > c.max_word_chars and max(map(len, line.split())) > c.max_word_chars:
            return "long_word"
        if phrases:
            lowered = line.lower()
            for phrase in phrases:
                if phrase in lowered:
                    return "javascript" if phrase == "javascript" else "policy"
        return None

    def _count_sentences(self, lines: list[str], marks: tuple[str, ...]) -> int:
        """Sentences per kept line, and at least one for a line: words after a line's last
        mark (all of a line kept without one when filter_no_terminal_punct is off) are a
        sentence, as DataTrove's sentence splitter counts them."""
        pattern = self._sentence_ends.get(marks)
        if pattern is None:
            pattern = self._sentence_ends[marks] = sentence_end_pattern(marks)
        return sum(max(1, count_sentences(pattern, line)) for line in lines)


def sentence_marks(marks: list[str] | tuple[str, ...]) -> list[str]:
    """The marks that end a sentence by themselves: not closing quotes, not ellipses."""
    return [m for m in marks if m not in CLOSERS and m not in ELLIPSES]


def sentence_end_pattern(marks: tuple[str, ...]) -> re.Pattern[str]:
    """Where a sentence may end: a run of sentence marks (closing quotes may follow) that is
    followed by whitespace or the end of the line, as in "Done. Next" (so "3.14" and
    "example.com" do not end one), or that holds a non-ASCII mark such as 。 or ！, which end
    sentences in scripts written without spaces between them. A run ending in an ellipsis
    (`...`, or `…` when it is a mark) is a candidate that `count_sentence_ends` judges.

    C4 split sentences with a trained tokenizer; this counts the same ends for ordinary prose
    and over-counts abbreviations ("Dr. Who"), which only matters near `min_sentences`."""
    enders = sorted(sentence_marks(marks), key=len, reverse=True)
    spaced = enders + ["…"] * ("…" in marks)  # the wide branch never takes an ellipsis alone
    any_mark = "(?:" + "|".join(map(re.escape, spaced)) + ")"
    closers = "[" + re.escape("".join(sorted(CLOSERS))) + "]*"
    pattern = rf"{any_mark}+{closers}(?=\s|$)"
    wide = [m for m in enders if not m.isascii()]
    if wide:
        wide_mark = "(?:" + "|".join(map(re.escape, wide)) + ")"
        pattern = rf"{any_mark}*{wide_mark}{any_mark}*{closers}|{pattern}"
    # A look at the first character rules out most positions before any alternative is tried;
    # a match starts only where a run of marks starts (one fixed-width look-behind per mark),
    # else a run of n marks not followed by a space is tried from each of its n positions.
    first_chars = "[" + re.escape("".join(sorted({m[0] for m in spaced}))) + "]"
    run_start = "".join(f"(?<!{re.escape(m)})" for m in spaced)
    return re.compile(rf"(?={first_chars}){run_start}(?:{pattern})")


_CLOSER_CHARS = "".join(CLOSERS)
_NEXT_CHAR = re.compile(r"\s*(\S?)")
_WORD = re.compile(r"[^\W_]")  # a letter or digit


def count_sentence_ends(pattern: re.Pattern[str], line: str) -> int:
    """Sentence ends in `line` found by `pattern` (`sentence_end_pattern`). An ellipsis ends
    one only when the next word does not start in lower case, Punkt's orthographic rule:
    "So... we waited... and waited" is one sentence, "Wait... What?! Fine." three."""
    return len(_sentence_ends(pattern, line))


def count_sentences(pattern: re.Pattern[str], line: str) -> int:
    """Sentences in `line`: its sentence ends, and the words after the last one, which a
    sentence splitter counts as a sentence without its mark ("... I loved it. Lol")."""
    ends = _sentence_ends(pattern, line)
    return len(ends) + (_WORD.search(line, ends[-1] if ends else 0) is not None)


def _sentence_ends(pattern: re.Pattern[str], line: str) -> list[int]:
    ends = []
    searched, word = 0, False  # whether the line from the last end to `searched` holds a word
    for match in pattern.finditer(line):
        # Marks with no word since the last end ("then . . . well", "!!! ???") end nothing.
        # Each stretch is searched once: from the last end each time, a long line of spaced
        # marks was quadratic (30 KB of " ." took 3.7 s).
        word = word or _WORD.search(line, searched, match.start()) is not None
        searched = match.start()
        if not word:
            continue
        ellipsis = match.group().rstrip(_CLOSER_CHARS).endswith(ELLIPSES)
        if not (ellipsis and _NEXT_CHAR.match(line, match.end())[1].islower()):
            ends.append(match.end())
            searched, word = match.end(), False
    return ends
