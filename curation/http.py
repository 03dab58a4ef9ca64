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


def content_type_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def meta_charset(html: bytes) -> str | None:
    """The charset a page declares in a <meta> tag within its first 4 KB."""
    match = _META_CHARSET.search(html[:4096])
    return match.group(1).decode("ascii", "ignore") if match else None


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
    label costs a little accuracy, never the document.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16")):
        if body.startswith(bom):
            return body.decode(codec, errors="replace").lstrip("\ufeff"), codec
    candidates = [normalise_charset(header_charset), normalise_charset(meta_charset(body)), "utf-8"]
    for codec in dict.fromkeys(c for c in candidates if c):
        try:
            return body.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    best = charset_normalizer.from_bytes(body).best()
    codec = normalise_charset(best.encoding if best else None) or "cp1252"
    return body.decode(codec, errors="replace"), codec
