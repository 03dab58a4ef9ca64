"""The filter stage's ordered chain of steps, built from `filter.steps` in the config.

`FilterChain.apply(doc)` runs the steps in order until one rejects; the first reason wins.
Jobs check the steps' files before Spark starts (`check_files`); the chain is built on the
driver, then shipped to the executors, where the language model loads once per Python worker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from curation.filters.badwords import LID_CODES, BadWordsFilter, word_list_files
from curation.filters.base import UNSPACED_LANGUAGES, Document, DocumentFilter
from curation.filters.blocklist import BlocklistFilter, list_files
from curation.filters.c4 import C4Filter
from curation.filters.fineweb import FineWebFilter
from curation.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from curation.filters.language import LanguageFilter, check_languages
from curation.pii import PIIFilter

# step name -> how to check the files it reads exist, cheaply (before Spark starts)
FILE_CHECKS: dict[str, Callable[[Any], object]] = {
    "blocklist": lambda c: list_files(c.blocklist),
    "language": lambda c: check_languages(c.language),
    "badwords": lambda c: word_list_files(c.badwords),
}

EMPTY = "empty"  # the reason of a document whose text is null or blank

# steps whose rules count words split on whitespace: the rule such text fails there, and the
# setting that lets it pass
WORD_COUNTING_STEPS = {
    "gopher_quality": (
        "gopher_quality:min_words",
        "lower filter.gopher_quality.min_words and raise its max_mean_word_length",
    ),
    "c4": ("c4:min_sentences", "lower filter.c4.min_words_per_line"),
    # a line of such text is about one "word"
    "fineweb": ("fineweb:newline_word_ratio", "raise filter.fineweb.max_newline_word_ratio"),
}


def unspaced_language_warning(config: Any) -> str | None:
    """Gopher's, C4's and FineWeb's rules count words split on whitespace (as the papers did
    for English), so a kept language written without spaces makes a page of it a handful of
    "words": nearly all its documents fail them. Said before the stage runs."""
    steps = [s for s in WORD_COUNTING_STEPS if s in config.steps]
    if "language" not in config.steps or not steps:
        return None
    unspaced = [lang for lang in config.language.languages if lang in UNSPACED_LANGUAGES]
    if not unspaced:
        return None
    rules = ", ".join(WORD_COUNTING_STEPS[step][0] for step in steps)
    settings = " and ".join(WORD_COUNTING_STEPS[step][1] for step in steps)
    one = len(steps) == 1
    return (
        f"filter.language.languages keeps {', '.join(unspaced)}, written without spaces, but "
        f"{', '.join(steps)} {'counts' if one else 'count'} words split on whitespace: nearly "
        f"every such document fails ({rules}); drop {'that step' if one else 'those steps'}, "
        f"or {settings}"
    )


def unlisted_language_warning(config: Any) -> str | None:
    """Kept languages the bad-words lists lack: their documents pass the step unchecked
    (counted as `badwords:no_list`). Said before the stage runs."""
    if "badwords" not in config.steps:
        return None
    kept = config.language.languages if "language" in config.steps else []
    languages = kept or [config.badwords.default_language]
    listed = {LID_CODES.get(code, code) for code in word_list_files(config.badwords)}
    missing = [lang for lang in languages if lang not in listed]
    if not missing:
        return None
    return (
        f"filter.badwords.lists_dir ({config.badwords.lists_dir}) has no word list for "
        f"{', '.join(missing)}: those documents are not checked for bad words "
        "(counted as badwords:no_list)"
    )


def warnings(config: Any) -> list[str]:
    """What the filter config does that a user may not mean, said before the stage runs."""
    found = (unspaced_language_warning(config), unlisted_language_warning(config))
    return [warning for warning in found if warning]


# step name -> how to build it from the `filter` config section
BUILDERS: dict[str, Callable[[Any], DocumentFilter]] = {
    "blocklist": lambda c: BlocklistFilter.from_config(c.blocklist),
    "language": lambda c: LanguageFilter(c.language),
    "gopher_repetition": lambda c: GopherRepetitionFilter(c.gopher_repetition),
    "gopher_quality": lambda c: GopherQualityFilter(c.gopher_quality),
    "c4": lambda c: C4Filter(c.c4),
    "fineweb": lambda c: FineWebFilter(c.fineweb),
    "badwords": lambda c: BadWordsFilter.from_config(c.badwords),
    "pii": lambda c: PIIFilter(c.pii),
}


@dataclass
class Verdict:
    """What the chain decided for one document."""

    reason: str | None  # None = kept
    counters: Counter[str] = field(default_factory=Counter)


class FilterChain:
    def __init__(self, steps: list[DocumentFilter]):
        self.steps = steps

    @classmethod
    def from_config(cls, config: Any) -> FilterChain:
        """The steps named in `config.steps`, in that order (`config` is the `filter` section)."""
        return cls([BUILDERS[name](config) for name in config.steps])

    @staticmethod
    def check_files(config: Any) -> None:
        """Raise ConfigError when a configured step's list or model file is missing."""
        for name in config.steps:
            FILE_CHECKS.get(name, lambda c: None)(config)

    @property
    def adds(self) -> dict[str, pa.DataType]:
        """Columns the steps add, in step order."""
        return {name: kind for step in self.steps for name, kind in step.adds.items()}

    def apply(self, doc: Document) -> Verdict:
        """Run the steps on `doc` (rewritten/annotated in place) until one rejects it. A
        document without text is `empty` before any step: none could judge it (the language
        step named it `lang`, as if it were in another language)."""
        if not (doc.get("text") or "").strip():
            return Verdict(EMPTY)
        counters: Counter[str] = Counter()
        reason = None
        for step in self.steps:
            reason = step.filter(doc)
            counters.update(step.drain_counters())
            if reason is not None:
                break
        return Verdict(reason, counters)
