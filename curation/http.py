"""HTTP payload decoding: chunked transfer coding, Content-Encoding, and the page's charset.

Archived responses keep the bytes as sent on the wire. Common Crawl removes the transfer and
content codings and renames the headers (X-Crawler-...), other crawlers keep them; both occur.
"""

from __future__ import annotations

import codecs
import re
import zlib
from urllib.parse import urlsplit

import brotli
import charset_normalizer
from charset_normalizer.md import mess_ratio

_GZIP_MAGIC = b"\x1f\x8b"


class PayloadError(ValueError):
    """A payload whose coding is broken (bad chunk sizes, corrupt gzip/deflate/brotli)."""


class PayloadTooLarge(ValueError):
    """The decoded payload exceeds the configured cap."""


def dechunk(body: bytes) -> bytes:
    """Undo `Transfer-Encoding: chunked`.

    A body whose first line is not a hex chunk size was stored already de-chunked (the header
    is stale) and is returned unchanged; a body that starts chunked and then breaks is an error.
    A body cut short (no last chunk, or a chunk missing its end) keeps the data that is there,
    as RFC 9112 section 8 allows and warcio does.
    """
    first_line = body.split(b"\r\n", 1)[0].split(b";", 1)[0].strip()
    if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", first_line):
        return body
    out = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return bytes(out)  # cut before the last chunk
        size_text = body[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise PayloadError(f"bad chunk size {size_text[:20]!r} at byte {pos}") from None
        if size == 0:
            return bytes(out)
        start = line_end + 2
        out += body[start : start + size]
        pos = start + size
        if pos >= len(body):
            return bytes(out)  # cut within (or right after) this chunk
        if body[pos : pos + 2] != b"\r\n":
            raise PayloadError(f"chunk at byte {start} is not followed by CRLF")
        pos += 2


def decode_transfer(body: bytes, transfer_encoding: str | None, limit: int) -> bytes:
    """Undo Transfer-Encoding: chunked, then the codings listed before it (`gzip, chunked`,
    RFC 9112 §6.1), as Content-Encoding's are undone."""
    codings = [c.strip().lower() for c in (transfer_encoding or "").split(",") if c.strip()]
    if "chunked" in codings:
        body = dechunk(body)
    rest = ", ".join(c for c in codings if c != "chunked")
    return decode_content(body, rest, limit, header="Transfer-Encoding")


def decode_content(
    body: bytes, content_encoding: str | None, limit: int, header: str = "Content-Encoding"
) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br; several in order), capped at `limit` bytes."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # the last coding listed was applied last
        if coding in ("identity", "none"):
            continue
        if coding not in ("gzip", "x-gzip", "deflate", "br"):
            raise PayloadError(f"unsupported {header} {coding!r}")
        body = _undo_coding(body, coding, limit)
    if len(body) > limit:
        raise PayloadTooLarge(f"{len(body)} bytes > cap {limit}")
    return body


def _undo_coding(body: bytes, coding: str, limit: int) -> bytes:
    """One coding undone, or `body` itself when it was stored decoded under a stale header, as
    some crawlers do (warcio then reads it as is too): gzip by its magic bytes; deflate and br,
    which may have none, when they fail to decompress and the body starts like a page."""
    if coding in ("gzip", "x-gzip"):
        return _decompress(body, coding, limit) if body.startswith(_GZIP_MAGIC) else body
    try:
        return _decompress(body, coding, limit)
    except PayloadError:
        if _starts_like_page(body):
            return body
        raise


def _starts_like_page(body: bytes) -> bool:
    """Markup first, after a UTF-8 byte-order mark and white space: a page, not compressed data."""
    return body.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"<")


def _decompress(body: bytes, coding: str, limit: int) -> bytes:
    try:
        if coding == "br":
            out = _unbrotli(body, limit)
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
    # a stream cut short (a crawler's size cap, WARC-Truncated) keeps what it holds, as a
    # chunked body cut short does (`dechunk`) and warcio reads it
    # gzip members may follow one another (RFC 1952; `cat a.gz b.gz`): browsers read them all
    while (
        wbits == 31 and stream.eof and stream.unused_data[:2] == b"\x1f\x8b" and len(out) <= limit
    ):
        rest = stream.unused_data
        stream = zlib.decompressobj(wbits)
        out += stream.decompress(rest, limit + 1 - len(out))
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    """Brotli decompressed only a little past `limit`: a few KB can inflate to gigabytes.

    brotli >= 1.2 (the fix for CVE-2025-6176) stops growing its output once it passes the
    buffer limit (by up to one block, about twice the limit). A stream cut short keeps what
    it holds, as `_inflate`'s does: such a stream gives its output a block (32 KB) a call.
    """
    stream = brotli.Decompressor()
    out = stream.process(body, output_buffer_limit=limit + 1)
    while not stream.is_finished() and len(out) <= limit:
        more = stream.process(b"", output_buffer_limit=limit + 1 - len(out))
        if not more:
            break
        out += more
    return out


_META_CHARSET = re.compile(  # a tag of at most 1 KB: `<meta` repeated is read once each
    rb"""<meta[^>]{1,1024}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
# An unclosed comment, script or tag runs to the end of the page: matched so, every match
# ends where the scan goes on, and a page of 30,000 `<!--` is read once (it took 19 s).
_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_MARKUP = re.compile(
    rb"<(script|style)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)|<[^>]*(?:>|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_HEAD_END = re.compile(rb"<body[\s>]|</head\s*>", re.IGNORECASE)
# An XHTML page's XML declaration (XML 1.0 section 4.3.3), which opens the page
_XML_ENCODING = re.compile(rb"""\s*<\?xml\s[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_HEAD_BYTES = 65536
# The WHATWG Encoding Standard's labels (https://encoding.spec.whatwg.org/#names-and-labels),
# by the Python codec that decodes them as browsers do (legacy labels widened to the superset
# browsers use: latin-1 and ASCII are windows-1252, GBK is gb18030, EUC-KR is cp949). A page
# may name only these: Python would also accept "undefined", "utf-7", "unicode_escape" or
# "rot13", which are not page encodings. "replacement" and "x-user-defined" are left out.
_WHATWG_LABELS = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "cp866": "866 cp866 csibm866 ibm866",
    "iso8859-2": "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 "
    "iso_8859-2:1987 l2 latin2",
    "iso8859-3": "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 "
    "iso_8859-3:1988 l3 latin3",
    "iso8859-4": "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 "
    "iso_8859-4:1988 l4 latin4",
    "iso8859-5": "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 "
    "iso_8859-5 iso_8859-5:1988",
    "iso8859-6": "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 "
    "iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    "iso8859-7": "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 "
    "iso8859-7 iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    "iso8859-8": "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 "
    "iso8859-8 iso88598 iso_8859-8 iso_8859-8:1988 visual csiso88598i iso-8859-8-i logical",
    "iso8859-10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859-13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859-14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859-15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859-16": "iso-8859-16",
    "koi8-r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8-u": "koi8-ru koi8-u",
    "mac-roman": "csmacintosh mac macintosh x-mac-roman",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1250": "cp1250 windows-1250 x-cp1250",
    "cp1251": "cp1251 windows-1251 x-cp1251",
    "cp1252": "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 "
    "iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    "cp1253": "cp1253 windows-1253 x-cp1253",
    "cp1254": "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 "
    "iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
    "cp1255": "cp1255 windows-1255 x-cp1255",
    "cp1256": "cp1256 windows-1256 x-cp1256",
    "cp1257": "cp1257 windows-1257 x-cp1257",
    "cp1258": "cp1258 windows-1258 x-cp1258",
    "mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    "gb18030": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk "
    "gb18030",
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "euc_jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022_jp": "csiso2022jp iso-2022-jp",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "cp949": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 "
    "ksc5601 ksc_5601 windows-949",
    "utf-16-be": "unicodefffe utf-16be",
    "utf-16-le": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
}
_CODEC_BY_LABEL = {
    label: codec for codec, labels in _WHATWG_LABELS.items() for label in labels.split()
}
_UTF16 = {"utf-16-le", "utf-16-be"}
# What detection may guess: the codecs above, in charset_normalizer's spelling. Left to all of
# Python's, it names DOS and Mac code pages (cp775, mac-latin2, ptcp154) that no page is in.
_DETECTABLE = [codecs.lookup(codec).name.replace("-", "_") for codec in _WHATWG_LABELS]


def _c1_filled(codec: str) -> str:
    """A charmap for `codec` as WHATWG's index reads it: Python's, with the bytes 0x80-0x9F it
    leaves undefined (cp1252's 0x81, 0x8D, 0x8F, 0x90, 0x9D; cp1251's 0x98) read as the C1
    controls of the same number; any other undefined byte stays so (U+FFFE)."""
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode(codec))
        except UnicodeDecodeError:
            chars.append(chr(byte) if 0x80 <= byte <= 0x9F else "\ufffe")
    return "".join(chars)


# The windows-* codes, whose holes browsers fill so: one stray byte (a 0x98 in a windows-1251
# page) decodes, where Python's codec fails the page and detection garbles all of it.
_WINDOWS = {codec: _c1_filled(codec) for codec in ("cp874", *(f"cp125{i}" for i in range(9)))}
# and one byte Python's cp1255 lacks above them: WHATWG's 0xCA is HEBREW POINT HOLAM HASER FOR VAV
_WINDOWS["cp1255"] = _WINDOWS["cp1255"][:0xCA] + "\u05ba" + _WINDOWS["cp1255"][0xCB:]
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# A UTF-8 page with at most this share of invalid sequences among its non-ASCII characters is
# UTF-8 with a few stray bytes. Legacy encodings misread as UTF-8 show over 50% invalid (CJK)
# and usually nearly 100% (single-byte codes such as windows-1252).
_MAX_INVALID_UTF8 = 0.1
# Charsets whose characters take several bytes: a payload cut short can end inside one.
_MULTI_BYTE = {"gb18030", "big5hkscs", "euc_jp", "iso2022_jp", "cp932", "cp949"}
# ISO-2022-JP's switch to JIS X 0208 (ESC $ @, ESC $ B): in 7-bit bytes, nothing else.
_ISO2022_JP_ESCAPE = re.compile(rb"\x1b\$[@B]")
# The single-byte codes that read Latin-script text: a page in one (Portuguese in windows-1252,
# Polish in windows-1250) usually decodes just as cleanly in the others, so the bytes cannot
# tell them apart. Other scripts' codes they do tell apart, by the letters' frequencies.
_LATIN_CODECS = {
    "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "mac-roman", "iso8859-2", "iso8859-3",
    "iso8859-4", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16",
}  # fmt: skip
# The Latin code a country's undeclared pages were mostly written in, by its top-level
# domain: how browsers guess between them (Firefox's chardetng weighs the TLD so).
_COUNTRY_CODECS = {
    "cp1252": "ad ar at au be bo br ca ch cl co cr de dk do ec es fi fo fr gl gt hn ie is it "
    "li lu mx ni nl no nz pa pe pr pt py se sv uk uy ve za",
    "cp1250": "ba cz hr hu pl ro si sk",
    "cp1254": "az tr",
    "cp1257": "ee lt lv",
    "cp1258": "vn",
}
_CODEC_BY_TLD = {tld: codec for codec, tlds in _COUNTRY_CODECS.items() for tld in tlds.split()}
# An ISO code whose letters the windows code of its script moved (ISO-8859-2's š, ž, ť at
# 0xB9, 0xBE, 0xBB are ą, ľ, » in windows-1250): a guess of it is no tie the domain may break,
# as it fits such a page better and the windows reading is as clean to the mess measure.
_ISO_BESIDE = {"iso8859-2": "cp1250", "iso8859-13": "cp1257", "iso8859-15": "cp1252"}


def content_type_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def meta_charset(html: bytes) -> str | None:
    """The charset a page declares in a <meta> tag of its head (up to `<body` or `</head>`,
    at least its first 4 KB, at most 64 KB), comments left out: browsers take a <meta> after
    the 1 KB of their prescan too, as the parser meets it in the head, and real heads put it
    after 20 KB of scripts and styles.

    A declared UTF-16 means UTF-8, as in WHATWG's prescan: the tag could only be found because
    the page is ASCII-compatible, which UTF-16 is not.
    """
    head = _COMMENT.sub(b"", html[:_HEAD_BYTES])
    end = _HEAD_END.search(head)
    match = _META_CHARSET.search(head, 0, max(4096, end.start()) if end else len(head))
    if not match:
        return None
    label = match.group(1).decode("ascii", "ignore")
    return "utf-8" if normalise_charset(label) in _UTF16 else label


def xml_charset(html: bytes) -> str | None:
    """The encoding an XML declaration at the page's start names (XHTML has no <meta> to);
    a UTF-16 one means UTF-8, as `meta_charset`'s does: the bytes read as ASCII."""
    match = _XML_ENCODING.match(html)
    if not match:
        return None
    label = match.group(1).decode("ascii")
    return "utf-8" if normalise_charset(label) in _UTF16 else label


def normalise_charset(label: str | None) -> str | None:
    """Python codec for a WHATWG charset label; None for any other label, which browsers
    ignore too, so the next source of the charset (<meta>, detection) decides."""
    return _CODEC_BY_LABEL.get((label or "").strip().lower())


def decode_html(body: bytes, header_charset: str | None, url: str | None = None) -> tuple[str, str]:
    """Decode a page to text; returns (text, codec used).

    Order: byte-order mark; UTF-8 when the non-ASCII bytes are all valid UTF-8, whatever the
    label (legacy text almost never is, mislabelled UTF-8 is common; trafilatura and DataTrove
    try it first too); ISO-2022-JP for 7-bit bytes with its escapes; UTF-8 with a few invalid
    bytes, whatever the label too (legacy text read as UTF-8 is nearly all invalid, while a
    label of a single-byte code fits any bytes); HTTP header; <meta>; an XML declaration's
    encoding; a declared windows-* code with the bytes Python leaves undefined read as WHATWG
    reads them, or a multi-byte charset whose only misfit is a last character cut short; then
    detection, of the page and of the page less a character cut at its end
    (`_without_cut_character`), which prefers another script with a language the text between
    the tags reads as to a Latin guess, and between Latin-script codes takes the one of the
    `url`'s country when it fits as well. So a wrong label costs a little accuracy, never the
    document, and neither a stray UTF-8 byte nor a cut garbles a whole page: the bytes that do
    not fit are U+FFFD, as browsers write them.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace").lstrip("\ufeff"), codec
    text = _strict_utf8(body)
    if text is not None:
        return text, "utf-8"
    if body.isascii():
        # 7-bit bytes with ISO-2022-JP's escapes are that, whatever the label: read as ASCII
        # or UTF-8, the escapes would be text
        if _ISO2022_JP_ESCAPE.search(body):
            text = _decode(body, "iso2022_jp") or _decode_cut(body, "iso2022_jp")
            if text is not None:
                return text, "iso2022_jp"
    else:
        text = _mostly_utf8(body)
        if text is not None:
            return text, "utf-8"
    declared = [
        _header_codec(body, header_charset),
        normalise_charset(meta_charset(body)),
        normalise_charset(xml_charset(body)),
    ]
    declared = list(dict.fromkeys(c for c in declared if c))
    for codec in dict.fromkeys([*declared, "utf-8"]):
        text = _decode(body, codec)
        if text is not None:
            return text, codec
    for codec in declared:
        if codec in _WINDOWS:  # the bytes Python leaves undefined, and U+FFFD for WHATWG's
            return _decode_as(body, codec, errors="replace"), codec
        text = _decode_cut(body, codec) if codec in _MULTI_BYTE else None
        if text is not None:
            return text, codec
    codec = _detected_codec(body, _country_codec(url))
    cut = _without_cut_character(body)
    if cut is not body and codec not in _MULTI_BYTE:  # a page cut in a character?
        cut_codec = _detected_codec(cut, _country_codec(url))
        if cut_codec != codec and (
            cut_codec in _MULTI_BYTE or _mess(cut, cut_codec) < _mess(cut, codec)
        ):
            codec = cut_codec
    return _decode_as(body, codec, errors="replace"), codec


def _mess(body: bytes, codec: str) -> float:
    """charset_normalizer's measure of unlikely characters in `body` read with `codec`."""
    return mess_ratio(_decode_as(body, codec, errors="replace"), 1.0)


def _without_cut_character(body: bytes) -> bytes:
    """`body` less its last bytes outside ASCII, at most 3, or `body` itself when it ends in
    ASCII: a multi-byte character cut at the end rules its charset out of detection (a
    crawler's size cap cuts anywhere). Its guess is taken when it is a multi-byte code, or
    reads it with less mess than the whole page's guess: a short Hebrew page less its last
    letters was read as Cyrillic, and a windows-1252 page cut after a `”` as Mac Roman."""
    end = len(body)
    while end > max(len(body) - 3, 0) and body[end - 1] >= 0x80:
        end -= 1
    return body[:end] if 0 < end < len(body) else body


def _strict_utf8(body: bytes) -> str | None:
    """`body` as UTF-8 if it has non-ASCII bytes and all are valid UTF-8, else None. Pure ASCII
    is left to the label, which may name a 7-bit code such as ISO-2022-JP."""
    if body.isascii():
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


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


def _country_codec(url: str | None) -> str | None:
    """The Latin code of the country whose top-level domain `url` is on, if any."""
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:  # a malformed URL gives no hint
        return None
    return _CODEC_BY_TLD.get(host.rstrip(".").rpartition(".")[2])


def _detected_codec(body: bytes, country_codec: str | None) -> str:
    """charset_normalizer's guess among the web's encodings, widened as its label would be;
    with nothing clean, windows-1252 (what browsers assume of an undeclared page).

    A Latin guess gives way to another script's code that the text between the tags reads
    as (markup, scripts and styles are ASCII words that can outweigh it: a Greek page looked
    clean in windows-1250, as English), and to the Latin `country_codec` of the page's domain
    when that reads the page with no more mess (charset_normalizer's measure of unlikely
    characters): then both fit, and the country tells best which one the page was written in.
    """
    best, guess = _guess(body)
    if best is not None and guess not in _LATIN_CODECS:
        return guess
    script = _script_between_tags(body, no_clean_reading=best is None)
    if script:
        return script
    if best is None:  # nothing clean: windows-1252, as browsers assume
        return "cp1252"
    if country_codec in (None, guess, _ISO_BESIDE.get(guess)):
        return guess
    try:
        page = _decode_as(body, country_codec)
    except UnicodeError:
        return guess
    return country_codec if mess_ratio(page, 1.0) <= mess_ratio(str(best), 1.0) else guess


def _script_between_tags(body: bytes, no_clean_reading: bool) -> str | None:
    """The code of a script other than Latin that the text between the tags reads as, with a
    language found in it (German read as KOI8-U has none); when the page, markup and all, had
    no clean reading, a multi-byte code too (a Shift_JIS page of short lines and ruby passed
    the mess limit in no chunk)."""
    text = _MARKUP.sub(b" ", body)
    if text.isascii():
        return None
    best, guess = _guess(text)
    if best is None or guess in _LATIN_CODECS:
        return None
    return guess if best.coherence > 0 or (no_clean_reading and guess in _MULTI_BYTE) else None


def _guess(body: bytes) -> tuple[charset_normalizer.CharsetMatch | None, str | None]:
    """charset_normalizer's best match and its codec, widened as its label would be."""
    best = charset_normalizer.from_bytes(body, cp_isolation=_DETECTABLE).best()
    return (best, _widened(best)) if best is not None else (None, None)


def _widened(match: charset_normalizer.CharsetMatch) -> str:
    """The match's codec, widened as its label would be (latin-1 to windows-1252, ...)."""
    name = codecs.lookup(match.encoding).name
    return normalise_charset(name.replace("_", "-")) or name


def _decode(body: bytes, codec: str) -> str | None:
    """`body` decoded with `codec` (Python's table: strict), or None when it does not fit."""
    try:
        return body.decode(codec)
    except UnicodeError:
        return None


def _decode_cut(body: bytes, codec: str) -> str | None:
    """`body` in `codec` when all that does not fit is its last character, cut short (a
    crawler's size cap ends a payload anywhere), with U+FFFD for it; else None. Detection
    would have guessed another codec from the whole page and garbled all of it."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    try:
        text = decoder.decode(body, final=False)
    except UnicodeDecodeError:
        return None
    return text + "\ufffd" if decoder.getstate()[0] else text


def _decode_as(body: bytes, codec: str, errors: str = "strict") -> str:
    """`body.decode(codec, errors)`, with the windows-* codes read as WHATWG reads them."""
    if codec in _WINDOWS:
        return codecs.charmap_decode(body, errors, _WINDOWS[codec])[0]
    return body.decode(codec, errors)


def _mostly_utf8(body: bytes) -> str | None:
    """`body` as UTF-8 with U+FFFD for invalid sequences, or None if there are too many.

    A few (see _MAX_INVALID_UTF8) are stray bytes in a UTF-8 page; many mean another charset,
    left to the other candidates and detection.
    """
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    return text if invalid <= _MAX_INVALID_UTF8 * non_ascii else None
