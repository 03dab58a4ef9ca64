"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web
for the Finest Text Data at Scale", the custom filters): what Gopher and C4 let through
that still reads as lists, menus or templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.filters.base import Document, DocumentFilter, document_language, words
from curation.filters.text_stats import (
    TERMINAL_PUNCTUATION,
    PunctuationByLanguage,
    check_at_least,
    check_fractions,
    check_marks,
    content_lines,
    repeated,
)
from refinery.config import ConfigError


@dataclass
class FineWebConfig:
    # Reject when at most 12% of the lines end in terminal punctuation. The boundaries are
    # DataTrove's (<= 0.12, >= 0.67, >= 0.01; > 0.3 newlines per word).
    min_line_punct_ratio: float = 0.12
    # Reject when at least 67% of the lines are at most 30 characters long.
    max_short_line_ratio: float = 0.67
    short_line_max_chars: int = 30
    # Reject when at least 1% of the characters are in repeated lines (every copy after the
    # first), the threshold of FineWeb's released pipeline.
    max_dup_line_char_ratio: float = 0.01
    # Reject when there are more than 0.3 newlines per word (FineWeb's released pipeline).
    max_newline_word_ratio: float = 0.3
    # Marks a line may end in; per language where a script needs its own.
    terminal_punctuation: list[str] = field(default_factory=lambda: list(TERMINAL_PUNCTUATION))
    terminal_punctuation_by_language: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        section = "filter.fineweb"
        check_fractions(
            section,
            min_line_punct_ratio=self.min_line_punct_ratio,
            max_short_line_ratio=self.max_short_line_ratio,
            max_dup_line_char_ratio=self.max_dup_line_char_ratio,
        )
        # The rules compare as DataTrove's do (<=, >=), so at these ends they reject every page.
        for key, value, end in [
            ("min_line_punct_ratio", self.min_line_punct_ratio, 1.0),
            ("max_short_line_ratio", self.max_short_line_ratio, 0.0),
            ("max_dup_line_char_ratio", self.max_dup_line_char_ratio, 0.0),
        ]:
            if value == end:
                raise ConfigError(f"{section}.{key} = {value} would reject every page")
        check_at_least(section, 0, short_line_max_chars=self.short_line_max_chars)
        check_at_least(section, 0, max_newline_word_ratio=self.max_newline_word_ratio)
        check_marks(section, self.terminal_punctuation, self.terminal_punctuation_by_language)


class FineWebFilter(DocumentFilter):
    """Rejects pages made of lines that are not prose: few end in punctuation, most are short,
    some repeat, or line breaks come every few words."""

    name = "fineweb"

    def __init__(self, config: FineWebConfig | None = None):
        c = self.config = config or FineWebConfig()
        self.punctuation = PunctuationByLanguage(
            c.terminal_punctuation, c.terminal_punctuation_by_language
        )

    def filter(self, doc: Document) -> str | None:
        c = self.config
        text = doc["text"]
        lines = content_lines(text)
        # A page without lines has none ending in punctuation: it is rejected by that rule.
        marks = self.punctuation.marks(document_language(doc))
        ended = sum(line.endswith(marks) for line in lines)
        if not lines or ended / len(lines) <= c.min_line_punct_ratio:
            return self.reason("line_punct_ratio")
        short = sum(len(line) <= c.short_line_max_chars for line in lines)
        if short / len(lines) >= c.max_short_line_ratio:
            return self.reason("short_line_ratio")
        _, dup_chars = repeated(lines)
        if dup_chars / sum(map(len, lines)) >= c.max_dup_line_char_ratio:
            return self.reason("dup_line_char_ratio")
        if text.count("\n") / len(words(text)) > c.max_newline_word_ratio:
            return self.reason("newline_word_ratio")
        return None
