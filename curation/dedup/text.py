"""Keys that decide URL and exact duplicates (a normalised URL, a hash of simplified text)
and the normalised words that near dedup shingles."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import numpy as np

DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only track the visit (utm_*, click ids); they do not change the page.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|gclid|fbclid|msclkid|mc_cid|mc_eid)$", re.IGNORECASE)
DIGITS = re.compile(r"\d")
# Accents as FineWeb's simplification drops them (DataTrove's norm_unicode_diacritics), so a
# copy stripped of them ("cafe", Greek in capitals, Vietnamese without tones) is the same text:
# the combining diacritical marks that Latin, Greek and Cyrillic letters decompose into, and
# Hebrew points and Arabic vowel marks. Unlike DataTrove, the vowel signs and viramas of
# Indic and Southeast Asian scripts stay (they are the vowels: "कि" is not "का"), and so do
# kana's voicing marks (が is not か).
ACCENTS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0610-\u061a\u064b-\u065f\u0670"
)
# Invisible characters that may sit inside a word (soft hyphen, zero-width space and joiners,
# word joiner, BOM), and variation selectors (a glyph's style: ❤️ is ❤, an ideograph's variant
# is the ideograph; alone after an emoji one was a word): two copies of a page differing only
# in them are the same text.
INVISIBLE = "\u00ad\u200b-\u200d\u2060\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef"
INVISIBLE_OR_ACCENT = re.compile(f"[{INVISIBLE}{ACCENTS}]")
ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
CODE_POINTS = 0x110000
PATH_SAFE = "/%:@!$&'()*+,;="  # RFC 3986 pchar and "/" (letters, digits and -._~ always are)


# Scripts written without spaces between words: Chinese and Japanese, and Thai, Lao, Khmer
# and Myanmar (whose words need a dictionary to find).
UNSPACED_SCRIPTS = ("CJK ", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "THAI ", "LAO ", "KHMER ")
UNSPACED_SCRIPTS += ("MYANMAR ",)


def unspaced_letter(char: str) -> bool:
    """A letter of a script written without spaces: each is a word of its own (as BERT's
    tokenizer splits ideographs), with the marks after it, so that shingles of such text are
    runs of letters and not of whole clauses (one edited character changed a third of a short
    page's shingles; a Thai page was 15 "words", and a one-word edit hid it from dedup).
    Digits are not: they fold to 0 before words are found."""
    return (
        char.isalnum()
        and not char.isdecimal()
        and unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS)
    )


def combining_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


@functools.cache
def solo_and_mark_codes() -> tuple[np.ndarray, np.ndarray]:
    """bool per code point: a letter of an unspaced script (a word alone, with the marks after
    it), and a combining mark; this module's regexes and wordhash.py's tables are built from
    them. Built on first use (~0.7 s)."""
    solo = np.zeros(CODE_POINTS, dtype=bool)
    mark = np.zeros(CODE_POINTS, dtype=bool)
    for point in range(CODE_POINTS):
        char = chr(point)
        solo[point] = unspaced_letter(char)
        mark[point] = combining_mark(char)
    return solo, mark


def _class_body(table: np.ndarray) -> str:
    """The code points where `table` is true, as ranges inside a regex character class."""
    edges = np.flatnonzero(np.diff(table, prepend=False, append=False))
    return "".join(
        f"{re.escape(chr(start))}-{re.escape(chr(end - 1))}"
        for start, end in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True)
    )


@functools.cache
def _class_bodies() -> tuple[str, str]:
    """Combining marks, and letters of unspaced scripts, as regex class bodies."""
    solo, mark = solo_and_mark_codes()
    return _class_body(mark), _class_body(solo)


def combining_marks_class(basic_plane: bool = False) -> str:
    """Every combining mark (Unicode category M), or those of the basic plane, as the body of
    a regex character class: with `\\w` it makes a word of a script whose vowel signs are marks
    (Devanagari, Tamil, ...). `re` tests a class of basic-plane characters alone by a table,
    2-3 times faster than the whole one."""
    if not basic_plane:
        return _class_bodies()[0]
    marks = solo_and_mark_codes()[1].copy()
    marks[0x10000:] = False
    return _class_body(marks)


@functools.cache
def words_pattern() -> re.Pattern:
    """Runs of `\\w` or combining marks: punctuation and whitespace end a word, a vowel sign
    or virama (Devanagari, Thai, Tamil, ...) does not, and is kept (`\\w` alone split "हिन्दी"
    into "ह", "न", "द" and dropped its signs, so words that differ only in them were equal).
    A letter of an unspaced script is a word alone, with the marks after it (a vowel sign)."""
    marks, solo = _class_bodies()
    return re.compile(rf"[{solo}][{marks}]*|(?:[^\W{solo}]|[{marks}])+")


@functools.cache
def _runs_pattern() -> re.Pattern:
    """Runs of `\\w` or combining marks, a run of such letters one of them: `words_pattern`'s
    words in a text without a letter of an unspaced script, found 2-3 times faster."""
    return re.compile(rf"[\w{combining_marks_class()}]+")


@functools.cache
def _solo_pattern() -> re.Pattern:
    return re.compile(f"[{_class_bodies()[1]}]")


def find_words(text: str) -> list[str]:
    """`words_pattern`'s words of `text`, by the faster pattern where it has the same ones."""
    pattern = words_pattern() if _solo_pattern().search(text) else _runs_pattern()
    return pattern.findall(text)


def simplified(text: str) -> str:
    """NFKC, accents and invisible characters dropped ("Ça" is "ca", "exam\u00adple" is
    "example"), lower case: the string both word finders read (this module's regex,
    wordhash.py's table). NFKC is NFKD then composition, so the accents go in between."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", INVISIBLE_OR_ACCENT.sub("", decomposed)).lower()


def normalized_words(text: str | None) -> list[str]:
    """FineWeb's text simplification before hashing and shingling: `simplified` (accents
    dropped too), digits folded to 0, punctuation and whitespace dropped between words."""
    return find_words(DIGITS.sub("0", simplified(text or "")))


def normalize_text(text: str | None) -> str:
    """What character shingles read: the simplified text's runs of word characters, digits
    folded, joined by single spaces; a run of ideographs stays one, as written."""
    return " ".join(_runs_pattern().findall(DIGITS.sub("0", simplified(text or ""))))


def exact_key(text: str | None) -> str | None:
    """The exact-duplicate key: a 128-bit digest of the `simplified` words, their digits as
    written. Copies that differ in case, spacing or punctuation are one text (so are `-5` and
    `5`, `1.2` and `1/2`); texts whose digits differ (a score, a dose, a sum) are not, unlike
    shingles, which fold digits (FineWeb). A text without a word (empty, emoji, symbols) has
    no key: it is nobody's copy."""
    words = find_words(simplified(text or ""))
    if not words:
        return None
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()


def normalize_url(url: str | None) -> str | None:
    """The URL-duplicate key: scheme and host lower-cased (an internationalised host in
    punycode), default port, fragment, tracking parameters and a trailing slash dropped, the
    path's escapes and dot segments normalised (RFC 3986 6.2.2: `%7E` is `~`, `/café` is
    `/caf%C3%A9`, `/a/../b` is `/b`),
    query parameters sorted. `http` and `https`
    stay distinct (they can serve different pages); so do `www.` and the bare host, and
    `#!` fragments (Google's AJAX-crawling scheme: each names a page a crawler fetched)."""
    if not url or not url.strip():
        return None  # no URL: no URL duplicate either
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal: the raw string is its own key
        return url.strip()
    scheme = parts.scheme.lower()
    host = ascii_host((parts.hostname or "").rstrip("."))
    if ":" in host:  # an IPv6 literal keeps its brackets: [::1]:8080 is not [::1:8080]
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = normal_path(parts.path).rstrip("/") or "/"
    # Escapes that are not UTF-8 (Latin-1 `?q=M%FCnchen`) survive as their bytes: decoded with
    # replacement they all became U+FFFD, and different pages one key.
    pairs = parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
    query = sorted((k, v) for k, v in pairs if not TRACKING_PARAMS.match(k))
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    encoded = urlencode(query, encoding="utf-8", errors="surrogateescape")
    return urlunsplit((scheme, netloc, path, encoded, fragment))


# The full stops UTS 46 reads as label separators besides ".": ideographic, fullwidth, halfwidth
IDEOGRAPHIC_DOTS = re.compile("[\u3002\uff0e\uff61]")


def ascii_host(host: str) -> str:
    """An internationalised host as its punycode (`bücher.example` is `xn--bcher-kva.example`,
    as a crawler and UT1's lists may record it) by IDNA 2008 with UTS 46, as browsers write
    them: Python's own codec is IDNA 2003, which makes `straße.de` the other site
    `strasse.de`. Only UTS 46's mapping is applied, not IDNA 2008's checks, so a label those
    refuse (`☃`, emoji) is punycoded as browsers still do (`xn--n3h`); a label that UTS 46
    refuses too, or too long for DNS, stays as it is. Each label on its own, so the parents
    of a bad one convert."""
    if host.isascii():
        return host
    import idna

    def label(text: str) -> str:
        try:
            mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
            encoded = mapped if mapped.isascii() else f"xn--{mapped.encode('punycode').decode()}"
        except (idna.IDNAError, UnicodeError):
            return text
        return encoded if len(encoded) <= 63 else text  # DNS's longest label

    host = IDEOGRAPHIC_DOTS.sub(".", host)  # label separators to UTS 46 too
    return ".".join(label(part) if part else part for part in host.split("."))


def normal_path(path: str) -> str:
    """Characters outside ASCII as UTF-8 escapes, escapes of unreserved characters decoded
    and the others' hex in upper case, then dot segments removed (`/a/./b/../c` is `/a/c`,
    `%2E` included): the forms RFC 3986 (section 6.2.2) calls the same path."""

    def escape(match: re.Match) -> str:
        char = chr(int(match[1], 16))
        return char if char in UNRESERVED else f"%{match[1].upper()}"

    escaped = ESCAPE.sub(escape, quote(path, safe=PATH_SAFE, errors="surrogateescape"))
    return remove_dot_segments(escaped)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as browsers resolve a path before requesting it: `.` segments
    dropped, each `..` dropping the segment before it; empty segments (`//`) stay."""
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    rooted = path.startswith("/")
    kept: list[str] = []
    for segment in segments[1:] if rooted else segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):  # `/a/b/..` is the folder `/a/`
        kept.append("")
    return ("/" if rooted else "") + "/".join(kept)
