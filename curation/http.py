"""HTTP payload decoding: chunked transfer coding, Content-Encoding, and the page's charset.

Archived responses keep the bytes as sent on the wire. Common Crawl removes the transfer and
content codings and renames the headers (X-Crawler-...), other crawlers keep them; both occur.
"""

from __future__ import annotations

import codecs
import re
import zlib

import brotli
import charset_normalizer


class PayloadError(ValueError):
    """A payload whose coding is broken (bad chunk sizes, corrupt gzip/deflate/brotli)."""


class PayloadTooLarge(ValueError):
    """The decoded payload exceeds the configured cap."""


def dechunk(body: bytes) -> bytes:
    """Undo `Transfer-Encoding: chunked`.

    A body whose first line is not a hex chunk size was stored already de-chunked (the header
    is stale) and is returned unchanged; a body that starts chunked and then breaks is an error.
    """
    first_line = body.split(b"\r\n", 1)[0].split(b";", 1)[0].strip()
    if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", first_line):
        return body
    out = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise PayloadError(f"chunked body ends without a last chunk at byte {pos}")
        size_text = body[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise PayloadError(f"bad chunk size {size_text[:20]!r} at byte {pos}") from None
        if size == 0:
            return bytes(out)
        start = line_end + 2
        if start + size > len(body):
            raise PayloadError(f"chunk of {size} bytes at byte {pos} runs past the end of the body")
        out += body[start : start + size]
        pos = start + size
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        else:
            raise PayloadError(f"chunk at byte {start} is not followed by CRLF")


def decode_content(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br; several in order), capped at `limit` bytes."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # the last coding listed was applied last
        if coding in ("identity", "none"):
            continue
        if coding not in ("gzip", "x-gzip", "deflate", "br"):
            raise PayloadError(f"unsupported Content-Encoding {coding!r}")
        if not _looks_encoded(body, coding):
            continue  # stored decoded with a stale header, as some crawlers do
        body = _decompress(body, coding, limit)
    if len(body) > limit:
        raise PayloadTooLarge(f"{len(body)} bytes > cap {limit}")
    return body


def _looks_encoded(body: bytes, coding: str) -> bool:
    head = body[:512].lstrip().lower()
    return not head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml"))


def _decompress(body: bytes, coding: str, limit: int) -> bytes:
    try:
        if coding == "br":
            out = brotli.decompress(body)
        else:
            wbits = 31 if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
            out = _inflate(body, wbits, limit)
    except (zlib.error, brotli.error) as err:
        raise PayloadError(f"corrupt {coding} content: {err}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"decoded {coding} content exceeds cap {limit}")
    return out


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    try:
        stream = zlib.decompressobj(wbits)
        out = stream.decompress(body, limit + 1)
    except zlib.error:
        if wbits != zlib.MAX_WBITS:
            raise
        # "deflate" is often sent as raw deflate without the zlib wrapper.
        stream = zlib.decompressobj(-zlib.MAX_WBITS)
        out = stream.decompress(body, limit + 1)
    if not stream.eof and len(out) <= limit:
        raise zlib.error("stream is truncated")
    return out


_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
# WHATWG encoding rules: labels browsers decode as a superset.
_SUPERSETS = {
    "ascii": "cp1252",
    "latin_1": "cp1252",
    "iso8859_1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}
_UTF16 = {"utf-16", "utf-16-le", "utf-16-be"}
# A UTF-8 page with at most this share of invalid sequences among its non-ASCII characters is
# UTF-8 with a few stray bytes. Legacy encodings misread as UTF-8 show over 50% invalid (CJK)
# and usually nearly 100% (single-byte codes such as windows-1252).
_MAX_INVALID_UTF8 = 0.1


def content_type_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def meta_charset(html: bytes) -> str | None:
    """The charset a page declares in a <meta> tag within its first 4 KB.

    A declared UTF-16 means UTF-8, as in WHATWG's prescan: the tag could only be found because
    the page is ASCII-compatible, which UTF-16 is not.
    """
    match = _META_CHARSET.search(html[:4096])
    if not match:
        return None
    label = match.group(1).decode("ascii", "ignore")
    return "utf-8" if normalise_charset(label) in _UTF16 else label


def normalise_charset(label: str | None) -> str | None:
    """Python codec name for a charset label, widened to the browser superset; None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _SUPERSETS.get(name.replace("-", "_"), name)


def decode_html(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Decode a page to text; returns (text, codec used).

    Order as browsers do: byte-order mark, HTTP header, <meta>, then detection. A declared
    charset that does not decode cleanly falls back to UTF-8, then to detection, so a wrong
    label costs a little accuracy, never the document. UTF-8 tolerates a few invalid bytes
    (replaced by U+FFFD, as browsers do), so one stray byte does not garble a whole page.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16")):
        if body.startswith(bom):
            return body.decode(codec, errors="replace").lstrip("\ufeff"), codec
    candidates = [
        _header_codec(body, header_charset),
        normalise_charset(meta_charset(body)),
        "utf-8",
    ]
    for codec in dict.fromkeys(c for c in candidates if c):
        text = _decode(body, codec)
        if text is not None:
            return text, codec
    best = charset_normalizer.from_bytes(body).best()
    codec = normalise_charset(best.encoding if best else None) or "cp1252"
    return body.decode(codec, errors="replace"), codec


def _header_codec(body: bytes, header_charset: str | None) -> str | None:
    """The header's codec, but UTF-8 for a UTF-16 label on bytes that are ASCII-compatible.

    UTF-16 without a byte-order mark is real only if the bytes look like it; otherwise the label
    is wrong and, as with a <meta> UTF-16, the page is read as UTF-8.
    """
    codec = normalise_charset(header_charset)
    if codec in _UTF16 and not _looks_like_utf16(body):
        return "utf-8"
    return codec


def _looks_like_utf16(body: bytes) -> bool:
    """True when NULs fill alternate positions (over a quarter of them in the first 1 KB), as
    the ASCII markup of a UTF-16 page does; ASCII-compatible pages have next to no NULs."""
    head = body[:1024]
    return max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 8


def _decode(body: bytes, codec: str) -> str | None:
    """`body` decoded with `codec`, or None when it does not fit."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        return _mostly_utf8(body) if codec == "utf-8" else None
    except LookupError:
        return None


def _mostly_utf8(body: bytes) -> str | None:
    """`body` as UTF-8 with U+FFFD for invalid sequences, or None if there are too many.

    A few (see _MAX_INVALID_UTF8) are stray bytes in a UTF-8 page; many mean another charset,
    left to the other candidates and detection.
    """
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    return text if invalid <= _MAX_INVALID_UTF8 * non_ascii else None
