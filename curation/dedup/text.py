"""Keys that decide URL and exact duplicates: a normalised URL and a hash of normalised text."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only track the visit (utm_*, click ids); they do not change the page.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|gclid|fbclid|msclkid|mc_cid|mc_eid)$", re.IGNORECASE)
DIGITS = re.compile(r"\d")
# Invisible characters that may sit inside a word (soft hyphen, zero-width space and joiners,
# word joiner, BOM): two copies of a page differing only in them are the same text.
INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")


@functools.cache
def words_pattern() -> re.Pattern:
    """Runs of `\\w` or combining marks: punctuation and whitespace end a word, a vowel sign
    or virama (Devanagari, Thai, Tamil, ...) does not, and is kept (`\\w` alone split "हिन्दी"
    into "ह", "न", "द" and dropped its signs, so words that differ only in them were equal).
    Built on first use (~0.3 s)."""
    marks, start = [], None
    for point in range(0x110001):
        is_mark = point < 0x110000 and unicodedata.category(chr(point)).startswith("M")
        if is_mark and start is None:
            start = point
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(point - 1))}")
            start = None
    return re.compile(rf"[\w{''.join(marks)}]+")


def simplified(text: str) -> str:
    """NFKC, invisible characters dropped ("exam\u00adple" is "example"), lower case: the
    string both word finders read (this module's regex, wordhash.py's table)."""
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).lower()


def normalized_words(text: str | None) -> list[str]:
    """FineWeb's text simplification before hashing and shingling: `simplified`, digits
    folded to 0, punctuation and whitespace dropped between words."""
    return words_pattern().findall(DIGITS.sub("0", simplified(text or "")))


def normalize_text(text: str | None) -> str:
    """The normalised words joined by single spaces."""
    return " ".join(normalized_words(text))


def text_hash(normalized: str) -> str:
    """128-bit hex digest of normalised text: the exact-duplicate key."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).hexdigest()


def normalize_url(url: str | None) -> str | None:
    """The URL-duplicate key: scheme and host lower-cased, default port, fragment, tracking
    parameters and a trailing slash dropped, query parameters sorted. `http` and `https`
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
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets: [::1]:8080 is not [::1:8080]
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    # Escapes that are not UTF-8 (Latin-1 `?q=M%FCnchen`) survive as their bytes: decoded with
    # replacement they all became U+FFFD, and different pages one key.
    pairs = parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
    query = sorted((k, v) for k, v in pairs if not TRACKING_PARAMS.match(k))
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    encoded = urlencode(query, encoding="utf-8", errors="surrogateescape")
    return urlunsplit((scheme, netloc, path, encoded, fragment))
