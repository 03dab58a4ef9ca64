"""What every filter step is: a named, pure decision on one document (DataTrove's BaseFilter).

A document is the row as a plain dict (`id`, `url`, `host`, `text`, ... and the columns
earlier steps added, such as `lang`). A step returns None to keep the document or a short
stable reason to reject it (`blocklist:adult`, `gopher_repetition:top_2gram`). A step may
rewrite the document in place when its rule is a cleaning one (C4 drops lines, PII is
redacted) or annotate it (`lang`, `lang_score`, `pii_count`); the columns it adds are named
in `adds`, with their Arrow types, so the Spark glue can carry them into the kept Parquet.
Named counters (`count("pii:EMAIL", 2)`) are summed into OUT/stats/filter.json.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from typing import Any, ClassVar

import pyarrow as pa

Document = dict[str, Any]


class DocumentFilter(ABC):
    # Config key of the step and the prefix of its rejection reasons.
    name: ClassVar[str]
    # Columns this step adds to every document it sees: name -> Arrow type.
    adds: ClassVar[dict[str, pa.DataType]] = {}

    @abstractmethod
    def filter(self, doc: Document) -> str | None:
        """None to keep `doc` (possibly rewritten in place), else the reason to reject it."""

    def reason(self, rule: str) -> str:
        """`<name>:<rule>`, the form of every rejection reason with a rule inside a step."""
        return f"{self.name}:{rule}"

    def count(self, key: str, n: int = 1) -> None:
        """Add `n` to a named counter reported in the stage's stats (beyond kept/rejected)."""
        if n:
            self.__dict__.setdefault("_counters", Counter())[key] += n

    def drain_counters(self) -> Counter[str]:
        """The counters since the last drain (the glue drains after each document)."""
        return self.__dict__.pop("_counters", Counter())


# lid.176 codes of languages written without spaces between words
UNSPACED_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue")


def words(text: str) -> list[str]:
    """Whitespace-separated words, as the Gopher paper counts them. DataTrove counts with
    nltk's word_tokenize, where punctuation is a token of its own: its FineWeb newline ratio
    and Gopher alpha_words share then differ from these (deliberate: no trained sentence
    model to download, the same split for every language, a word stays one n-gram item)."""
    return text.split()


LANGUAGE_COLUMN = "lang"


def document_language(doc: Document, default: str = "en") -> str:
    """The document's language from the language step (of this run or an earlier one), or
    `default` when that step never ran."""
    return doc.get(LANGUAGE_COLUMN) or default
