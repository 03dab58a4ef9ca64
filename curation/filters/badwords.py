"""Undesirable content: C4's bad-words filter as a density threshold, per document language.

C4 (Raffel et al. 2020) dropped every page containing any word of the LDNOOBW list. That
removes too much: Dodge et al. 2021 ("Documenting Large Webtext Corpora") show it removes
text about and by minority groups and medical text disproportionately. So here a document is
rejected only when bad words exceed a density (hits per 1,000 whitespace words) and at least
two different entries occur, with the list of the document's language: news and medical text
repeat one word of a list (rape, Dutch "kanker" = cancer, "anal fin"), pages built around such
words use many. Matching is case-insensitive, on word boundaries, and phrase-aware:
text and entries are both cut into word tokens, and a hit is a run of tokens equal to an entry
("2 girls 1 cup" matches across any whitespace or punctuation), found with set lookups rather
than a regex alternation over the whole list. `&` joins letters into one token, so the entry
`s&m` is not the phrase "s m" that "company's M&A" holds; an entry without a word character
(an emoji) is counted where the text holds it. A language written without spaces (zh, ja, th,
...) has no word boundaries to match on: its entries are substrings, as in DataTrove's C4
filter, and its density counts each letter as a word, as word processors count CJK text
(whitespace "words" there are whole clauses, so one hit would be dense).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curation.dedup.text import combining_marks_class
from curation.filters.base import (
    UNSPACED_LANGUAGES,
    Document,
    DocumentFilter,
    document_language,
    words,
)
from curation.filters.blocklist import read_list
from refinery.config import ConfigError, resolve_path


@dataclass
class BadWordsConfig:
    # One file per language named by its code (en, de, ..., or en.txt), one word or phrase per
    # line, as LDNOOBW ships them; conf/badwords/ has short lists, ../shared/data/badwords/ the
    # full ones.
    lists_dir: str = "conf/badwords"
    # Reject above this many hits per 1,000 words. 5.0 keeps a medical or news article that
    # names a body part a few times; pages built around such words exceed it by far.
    max_per_1000_words: float = 5.0
    # ...and only when this many different entries occur (1: the density alone decides).
    min_distinct: int = 2
    # Language assumed when the language step did not run.
    default_language: str = "en"

    def __post_init__(self) -> None:
        if self.max_per_1000_words < 0:
            raise ConfigError(
                f"filter.badwords.max_per_1000_words must be >= 0, got {self.max_per_1000_words}"
            )
        if self.min_distinct < 1:
            raise ConfigError(f"filter.badwords.min_distinct must be >= 1, got {self.min_distinct}")


LETTER = re.compile(r"[^\W\d_]")
# LDNOOBW names a list by the code lid.176 does not use for its language (Filipino: Tagalog)
LID_CODES = {"fil": "tl"}
# A list file's name: an ISO 639 code, and optionally a region or variant after a hyphen
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9-]+)?")


@functools.cache
def token_pattern(basic_plane: bool) -> re.Pattern[str]:
    """Words of `\\w` and combining marks (`\\w` alone cut "चूत" to "च", "त", which "चित"
    matched too), `&` joining them (`s&m`). With the basic plane's marks only, for a text of
    no other character, the class is tested 3 times faster."""
    word = f"[\\w{combining_marks_class(basic_plane)}]+"
    return re.compile(f"{word}(?:&{word})*")


def tokens(text: str) -> list[str]:
    """Lower-case words of `text` composed (NFC): a decomposed "é" is the list's "é"."""
    text = unicodedata.normalize("NFC", text).lower()
    return token_pattern(not _past_basic_plane(text)).findall(text)


def _past_basic_plane(text: str) -> bool:
    """Whether `text` holds a character past U+FFFF (two UTF-16 units each), found at GB/s."""
    return not text.isascii() and len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def word_count(text: str, lang: str) -> int:
    """Whitespace words; letters for a language written without spaces."""
    return len(LETTER.findall(text)) if lang in UNSPACED_LANGUAGES else len(words(text))


class WordList:
    """An LDNOOBW list as a set of words and a set of phrases (token tuples) by first token."""

    def __init__(self, entries: list[str]):
        keys = {tuple(tokens(entry)) for entry in entries} - {()}
        symbols = {entry.strip() for entry in entries if not tokens(entry)} - {""}
        # the longest at a place, without overlaps (🖕🖕 is one entry, not 🖕 twice too)
        longest_first = sorted(symbols, key=lambda symbol: (-len(symbol), symbol))
        self.symbols = re.compile("|".join(map(re.escape, longest_first))) if symbols else None
        self.words = {key[0] for key in keys if len(key) == 1}
        self.phrases: dict[str, set[tuple[str, ...]]] = {}
        for key in keys:
            if len(key) > 1:
                self.phrases.setdefault(key[0], set()).add(key)

    def found(self, text: str) -> Counter[tuple[str, ...]]:
        """Occurrences by entry, the longest at a place and without overlaps, as SubstringList
        finds them: "date rape" is one entry, not "rape" too (two distinct entries from one
        phrase passed min_distinct)."""
        toks = tokens(text)
        found: Counter[tuple[str, ...]] = Counter()
        end = 0  # the tokens before `end` are part of an entry counted already
        for i in [i for i, tok in enumerate(toks) if tok in self.words or tok in self.phrases]:
            if i < end:
                continue
            at = [p for p in self.phrases.get(toks[i], ()) if tuple(toks[i : i + len(p)]) == p]
            entry = max(at, key=len) if at else (toks[i],) if toks[i] in self.words else None
            if entry:
                found[entry] += 1
                end = i + len(entry)
        if self.symbols:
            found.update((symbol,) for symbol in self.symbols.findall(text))
        return found

    def hits(self, text: str) -> int:
        return sum(self.found(text).values())


# loanwords: a run of katakana is one word (グロ is not in グローバル); its separators, the
# middle dot ・ and ゠, are not letters
KATAKANA = "\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"


class SubstringList:
    """The list of a language written without spaces: its entries found as substrings, the
    longest at a place and without overlaps, so that 色情片 is one hit, not one of 色情 too
    (two entries from one word). Where a word does have edges an entry must stand alone: one
    of Latin letters or digits (`sm` is no hit in "smartphone"), one of katakana in a run of
    katakana. An entry of one letter is left out: 性 or 奶 is part of too many words (女性,
    可能性, 牛奶) to say anything."""

    def __init__(self, entries: list[str]):
        unique = {entry.strip() for entry in entries}
        longer = {e.lower() for e in unique if len(e) > 1}
        longest_first = sorted(longer, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(_standing_alone, longest_first)) or "(?!)")

    def found(self, text: str) -> Counter[tuple[str, ...]]:
        return Counter((hit,) for hit in self.pattern.findall(text.lower()))


def _standing_alone(entry: str) -> str:
    """The regex of an entry of SubstringList, with the edges its script has; the look-behind
    after the entry, so that `re` still scans ahead for the entries' first characters."""
    literal = re.escape(entry)
    for letters in ("0-9a-z", KATAKANA):
        if re.fullmatch(f"[{letters}]+", entry):
            return rf"{literal}(?<![{letters}]{literal})(?![{letters}])"
    return literal


def word_list_files(config: BadWordsConfig) -> dict[str, Path]:
    """Language code -> its word list, from files named by the code (en, fil, fr-CA-u-sd-caqc:
    LDNOOBW's names), alone or with `.txt`; a README.md or notes.txt beside them is no list.
    A folder without any fails, since the step would keep every document as
    `badwords:no_list`; cheap, so jobs call it before Spark starts."""
    folder = resolve_path(config.lists_dir)
    if not folder.is_dir():
        raise ConfigError(f"filter.badwords.lists_dir: no folder {folder}")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        code = path.name.removesuffix(".txt")
        if not (path.is_file() and LANGUAGE_CODE.fullmatch(code)):
            continue
        if code in files:
            raise ConfigError(
                f"filter.badwords.lists_dir: {files[code].name} and {path.name} in {folder} "
                f"are both the {code} list: keep one"
            )
        files[code] = path
    if not files:
        raise ConfigError(
            f"filter.badwords.lists_dir: {folder} holds no word lists (files named by "
            "language code: en, de, ... or en.txt)"
        )
    return files


class BadWordsFilter(DocumentFilter):
    """Reject with reason `badwords` when hits per 1,000 words exceed the threshold, from at
    least `min_distinct` different entries."""

    name = "badwords"

    def __init__(self, lists: dict[str, WordList | SubstringList], config: BadWordsConfig):
        self.lists = lists
        self.max_density = config.max_per_1000_words
        self.min_distinct = config.min_distinct
        self.default_language = config.default_language

    @classmethod
    def from_config(cls, config: BadWordsConfig) -> BadWordsFilter:
        codes = {LID_CODES.get(code, code): path for code, path in word_list_files(config).items()}
        lists = {
            code: (SubstringList if code in UNSPACED_LANGUAGES else WordList)(read_list(path))
            for code, path in codes.items()
        }
        return cls(lists, config)

    def found(self, text: str, lang: str) -> Counter[tuple[str, ...]] | None:
        """Bad-word occurrences in `text` by entry of `lang`'s list; None without such a list."""
        words_list = self.lists.get(lang)
        return None if words_list is None else words_list.found(text)

    def filter(self, doc: Document) -> str | None:
        text = doc["text"] or ""
        lang = document_language(doc, self.default_language)
        found = self.found(text, lang)
        if found is None:
            self.count("badwords:no_list")
            return None
        hits = sum(found.values())
        self.count("badwords:hits", hits)
        dense = hits * 1000 > self.max_density * max(word_count(text, lang), 1)
        return "badwords" if dense and len(found) >= self.min_distinct else None
