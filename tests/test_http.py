import codecs
import gzip
import random
import re
import tracemalloc
import zlib
from pathlib import Path

import brotli
import pytest

from curation.http import (
    _WHATWG_LABELS,
    PayloadError,
    PayloadTooLarge,
    content_type_charset,
    dechunk,
    decode_content,
    decode_html,
    decode_transfer,
    meta_charset,
    normalise_charset,
)

PAGE = "<html><head><title>Grüße</title></head><body><p>Ça va — naïve café</p></body></html>"


def chunked(data: bytes, size: int = 7) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    parts = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
    return b"".join(parts) + b"0\r\n\r\n"


def test_dechunk_round_trip_and_extensions():
    data = PAGE.encode()
    assert dechunk(chunked(data)) == data
    assert dechunk(b"5;ext=1\r\nhello\r\n0\r\n\r\n") == b"hello"


def test_dechunk_leaves_already_dechunked_body_alone():
    # Crawlers that remove the chunking but keep the header: the body starts with markup.
    assert dechunk(PAGE.encode()) == PAGE.encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"5\r\nhello\r\nzz\r\n", "bad chunk size"),
        (b"5\r\nhelloXX0\r\n\r\n", "not followed by CRLF"),
    ],
)
def test_dechunk_rejects_broken_chunking(body, message):
    with pytest.raises(PayloadError, match=message):
        dechunk(body)


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (b"5\r\nhello\r\n", b"hello"),  # no last chunk
        (b"5\r\nhello\r\n3", b"hello"),  # cut in a chunk-size line
        (b"5\r\nhello", b"hello"),  # cut before a chunk's CRLF
        (b"5\r\nhello\r\n6\r\n worl", b"hello worl"),  # cut within a chunk
    ],
)
def test_dechunk_keeps_the_data_of_a_body_cut_short(body, kept):
    # RFC 9112 section 8: an incomplete message may be used; warcio keeps these bytes too
    assert dechunk(body) == kept


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as many servers send
        ("br", brotli.compress),
        ("identity", lambda b: b),
    ],
)
def test_decode_content(coding, encode):
    data = PAGE.encode()
    assert decode_content(encode(data), coding, limit=10_000) == data


def test_decode_content_stacked_codings_and_stale_header():
    data = PAGE.encode()
    assert decode_content(brotli.compress(gzip.compress(data)), "gzip, br", 10_000) == data
    assert decode_content(data, "gzip", 10_000) == data  # already decoded, header kept


def test_gzip_members_one_after_another_are_all_decoded():
    first, second = PAGE.encode(), b"<p>the second member</p>"
    body = gzip.compress(first) + gzip.compress(second)
    assert decode_content(body, "gzip", limit=10_000) == first + second
    with pytest.raises(PayloadTooLarge):
        decode_content(body, "gzip", limit=len(first) + 5)
    # the second member cut short keeps what it holds
    assert decode_content(body[:-12], "gzip", limit=10_000).startswith(first + b"<p>the")


def test_decode_transfer_undoes_chunked_then_the_codings_before_it():
    data = b"<html>" + b"x" * 500 + b"</html>"
    assert decode_transfer(chunked(gzip.compress(data)), "gzip, chunked", 10_000) == data
    assert decode_transfer(chunked(data), "Chunked", 10_000) == data
    with pytest.raises(PayloadError, match="unsupported Transfer-Encoding 'compress'"):
        decode_transfer(chunked(data), "compress, chunked", 10_000)


def test_decode_content_caps_and_corruption():
    big = b"<p>" + b"a" * 100_000
    with pytest.raises(PayloadTooLarge):
        decode_content(gzip.compress(big), "gzip", limit=1000)
    with pytest.raises(PayloadTooLarge):
        decode_content(big, None, limit=1000)
    with pytest.raises(PayloadError, match="corrupt gzip"):
        decode_content(b"\x1f\x8b\x08\x00garbage that is no deflate", "gzip", limit=1_000_000)
    with pytest.raises(PayloadError, match="corrupt br"):
        decode_content(b"\x8b\x00garbage", "br", limit=1_000_000)
    with pytest.raises(PayloadError, match="unsupported Content-Encoding 'zstd'"):
        decode_content(b"\x28\xb5\x2f\xfd", "zstd", limit=1000)


def test_brotli_is_decompressed_only_up_to_the_cap():
    bomb = brotli.compress(b"<p>" + b" " * (20 << 20), quality=1)  # 4 KB that inflate to 20 MB
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            decode_content(bomb, "br", limit=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_compressed_body_cut_short_keeps_what_it_holds(coding):
    """As a chunked body cut short does and warcio reads it: a crawler that stores the coded
    bytes and caps their size (WARC-Truncated: length) cuts a gzip body anywhere."""
    rng = random.Random(0)  # words that compress evenly: a cut at 90% is near 90% of the text
    words = [f"w{rng.randrange(50_000)}".encode() for _ in range(20_000)]
    data = b"<html><body><p>" + b" ".join(words) + b"</p></body></html>"
    encode = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[coding]
    coded = encode(data)
    kept = decode_content(coded[: len(coded) * 9 // 10], coding, limit=1_000_000)
    # nearly all of it: brotli gives a cut stream's output a 32 KB block a call
    assert 0.8 * len(data) < len(kept) < len(data) and data.startswith(kept)
    assert decode_content(coded, coding, limit=len(data)) == data


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
@pytest.mark.parametrize(
    "body",
    [codecs.BOM_UTF8 + PAGE.encode(), b'\n <meta charset="utf-8"><p>Stored decoded</p>'],
)
def test_stale_content_encoding_on_any_decoded_page(coding, body):
    # crawlers that store the decoded body keep the header; the page need not start <html>
    assert decode_content(body, coding, limit=10_000) == body


def test_charset_labels():
    assert content_type_charset('text/html; charset="ISO-8859-1"') == "ISO-8859-1"
    assert content_type_charset("text/html") is None
    assert normalise_charset("ISO-8859-1") == "cp1252"  # WHATWG: latin-1 means windows-1252
    assert normalise_charset("gb2312") == "gb18030"
    assert normalise_charset("Shift_JIS") == "cp932"
    assert normalise_charset("utf8") == "utf-8"
    assert normalise_charset(" Latin1 ") == "cp1252"
    assert normalise_charset("big5") == "big5hkscs"  # WHATWG Big5 includes HKSCS
    assert normalise_charset("utf-16") == "utf-16-le"
    assert normalise_charset("no-such-charset") is None


@pytest.mark.parametrize(
    "label",
    ["undefined", "unicode_escape", "utf-7", "punycode", "rot13", "replacement", "x-user-defined"],
)
def test_decode_html_ignores_labels_that_are_not_web_encodings(label):
    # Python knows these codecs, browsers do not; "undefined" raised a bare UnicodeError
    assert normalise_charset(label) is None
    page = PAGE.replace("<head>", '<head><meta charset="windows-1252">')
    assert decode_html(page.encode("cp1252"), label) == (page, "cp1252")  # the <meta> decides


@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252", "ascii", "koi8-r"])
def test_decode_html_reads_valid_utf8_as_utf8_whatever_the_label(label):
    page = "<p>Café crème, Straße</p>"
    assert decode_html(page.encode(), label) == (page, "utf-8")
    meta = f'<meta charset="{label}">{page}'
    assert decode_html(meta.encode(), None) == (meta, "utf-8")


def test_decode_html_reads_a_7bit_page_by_its_label():
    page = "<p>日本語のテキストです。</p>"  # ISO-2022-JP is all ASCII bytes, and valid UTF-8
    assert decode_html(page.encode("iso-2022-jp"), "iso-2022-jp") == (page, "iso2022_jp")


@pytest.mark.parametrize("label", ["windows-1252", "iso-8859-1", "latin1", "us-ascii"])
def test_decode_html_windows_1252_maps_its_undefined_bytes_to_c1_controls(label):
    # WHATWG's windows-1252; Python's cp1252 rejects these five bytes, so detection took over
    body = b"<p>Caf\xe9 cr\xe8me \x81\x8d\x8f\x90\x9d</p>"
    assert decode_html(body, label) == ("<p>Café crème \x81\x8d\x8f\x90\x9d</p>", "cp1252")


def test_decode_html_prefers_header_then_meta_then_detection():
    latin = PAGE.encode("cp1252")
    assert decode_html(latin, "windows-1252") == (PAGE, "cp1252")
    meta = PAGE.replace("<head>", '<head><meta charset="iso-8859-1">')
    assert decode_html(meta.encode("cp1252"), None) == (meta, "cp1252")
    koi8 = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
    koi8 += "</head><body>Привет, мир</body></html>"
    assert decode_html(koi8.encode("koi8-r"), None) == (koi8, "koi8-r")
    # Header wins over a contradicting meta tag, as in browsers.
    assert decode_html(meta.encode("utf-8"), "utf-8") == (meta, "utf-8")
    # XHTML names its encoding in its XML declaration (detection read this as iso8859-10)
    polish = "<p>" + "Zażółć gęślą jaźń. Świętość, Źródło. " * 5 + "</p>"
    xhtml = f'<?xml version="1.0" encoding="ISO-8859-2"?><html><body>{polish}</body></html>'
    assert decode_html(xhtml.encode("iso-8859-2"), None) == (xhtml, "iso8859-2")
    # a UTF-16 declaration read in ASCII bytes is wrong, as a <meta> one is: UTF-8
    ascii_page = '<?xml version="1.0" encoding="UTF-16"?><html><body><p>Plain text.</p></html>'
    assert decode_html(ascii_page.encode(), None) == (ascii_page, "utf-8")


def test_decode_html_falls_back_when_label_is_wrong_or_missing():
    sentence = "Съешь же ещё этих мягких французских булок, да выпей чаю. "
    russian = f"<html><body><p>{sentence * 20}</p></body></html>"
    text, codec = decode_html(russian.encode("cp1251"), None)
    assert text == russian and codec == "cp1251"
    # Declared UTF-8 but really windows-1251: strict UTF-8 fails, detection recovers.
    text, _ = decode_html(russian.encode("cp1251"), "utf-8")
    assert "французских" in text
    bom = b"\xef\xbb\xbf" + PAGE.encode()
    assert decode_html(bom, "cp1252") == (PAGE, "utf-8")
    assert decode_html(codecs.BOM_UTF16_BE + PAGE.encode("utf-16-be"), "utf-16") == (PAGE, "utf-16")


@pytest.mark.parametrize("header", ["utf-8", None])
def test_decode_html_keeps_utf8_with_a_few_stray_bytes(header):
    page = "<p>Über die Straße, Bücher, café 日本語</p>" * 5
    damaged = page.encode().replace("日".encode(), b"\xff" + "日".encode(), 1)
    # Strict UTF-8 fails on the stray byte; detection would garble every other character.
    assert decode_html(damaged, header) == (page.replace("日", "\ufffd日", 1), "utf-8")
    meta = b'<meta charset="utf-8">' + damaged
    assert decode_html(meta, None)[1] == "utf-8"


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("日本語のテキストです。東京は日本の首都であり、多くの人々が住んでいます。", "shift_jis"),
        ("Über die Straße fahren Bücher für Größe und Ärger, ça va. ", "cp1252"),
    ],
)
def test_decode_html_still_detects_legacy_pages_labelled_utf8(text, charset):
    page = f"<html><body><p>{text * 10}</p></body></html>"
    decoded, codec = decode_html(page.encode(charset), "utf-8")
    assert codec != "utf-8" and decoded == page


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-16be"])
def test_decode_html_reads_a_utf16_label_on_ascii_compatible_bytes_as_utf8(label):
    page = f'<html><head><meta charset="{label}"><title>Grüße</title></head><body>Ça va</body>'
    page += " " * (len(page.encode()) % 2)  # an even length decodes "cleanly" as UTF-16
    assert decode_html(page.encode(), None) == (page, "utf-8")  # WHATWG: meta UTF-16 is UTF-8
    assert decode_html(page.encode(), label) == (page, "utf-8")


def test_decode_html_trusts_a_utf16_header_on_utf16_bytes():
    assert decode_html(PAGE.encode("utf-16-le"), "utf-16le") == (PAGE, "utf-16-le")
    assert decode_html(PAGE.encode("utf-16-be"), "UTF-16BE") == (PAGE, "utf-16-be")


@pytest.mark.parametrize(
    ("page", "charset", "label"),
    [
        (
            "<p>東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。",
            "shift_jis",
            "Shift_JIS",
        ),
        ("<p>서울은 대한민국의 수도이며 가장 큰 도시입니다. 박물관", "euc_kr", "EUC-KR"),
        ("<p>北京是中华人民共和国的首都，也是全国的政治和文化中心。", "gbk", "GBK"),
    ],
)
def test_decode_html_keeps_the_declared_charset_of_a_page_cut_inside_a_character(
    page, charset, label
):
    # A crawler's size cap cuts the last character in half: detection found nothing clean
    # and read the whole page as windows-1252
    cut = page.encode(charset)[:-1]
    assert decode_html(cut, label) == (page[:-1] + "\ufffd", normalise_charset(label))
    meta = f'<meta charset="{label}">'.encode() + cut
    assert decode_html(meta, None)[1] == normalise_charset(label)


def test_decode_html_reads_a_windows_code_s_undefined_bytes_as_browsers_do():
    page = "<p>Київ є столицею України та її найбільшим містом.</p>"
    body = page.encode("cp1251").replace(" є ".encode("cp1251"), b" \x98\xba ")  # 0x98: no letter
    # Python's cp1251 failed on it and detection read the page as ptcp154 (every є and ї a
    # Kazakh letter); WHATWG's windows-1251 reads 0x98 as U+0098, a control the text drops
    assert decode_html(body, "windows-1251") == (page.replace(" є ", " \x98є "), "cp1251")


@pytest.mark.parametrize(
    ("page", "charset"),
    [
        # before, detection read these as mac-latin2, cp775 and kz1048
        ("<p>Opening hours are 9am–5pm.</p><p>She said the résumé had been sent.</p>", "cp1252"),
        ("<p>Müze uzun bir onarımın ardından yeniden açıldı.</p>" * 2, "cp1254"),
        (
            "<p>Квитки коштують дванадцять гривень, є знижки. Міська рада зібралася у вівторок, "
            "щоб обговорити новий бюджет.</p>" * 2,
            "cp1251",
        ),
    ],
)
def test_decode_html_detects_only_the_web_s_encodings(page, charset):
    page = f"<html><head><title>Page</title></head><body>{page}</body></html>"
    text, codec = decode_html(page.encode(charset), None)
    assert text == page and codec in _WHATWG_LABELS  # a codec another may equal on this page


@pytest.mark.parametrize("label", [None, "utf-8", "iso-8859-1"])
def test_decode_html_reads_iso_2022_jp_by_its_escapes(label):
    page = "<p>東京は日本の首都です。</p>"  # 7-bit: the escapes read as UTF-8 were the text
    assert decode_html(page.encode("iso-2022-jp"), label) == (page, "iso2022_jp")
    cut = page[:-5].encode("iso-2022-jp")[:-4]  # cut in a character and its escape back
    assert decode_html(cut, label) == (page[:-6] + "\ufffd", "iso2022_jp")


@pytest.mark.parametrize(
    ("page", "charset", "label"),
    [
        ("<p>Don’t miss the café, open 9am–5pm.</p>", "cp1252", "utf-8"),
        ("<p>博物馆经过长时间的修缮，上周重新开放。</p>" * 3, "gbk", "Shift_JIS"),
    ],
)
def test_decode_html_a_wrong_label_with_few_misfits_is_still_detected(page, charset, label):
    # bytes that do not fit the label in mid-page are no cut: the label is wrong
    text, codec = decode_html(page.encode(charset), label)
    assert text == page and codec != normalise_charset(label)


@pytest.mark.parametrize(
    "label", ["windows-1251", "windows-1250", "windows-1252", "iso-8859-1", "koi8-r", "Shift_JIS"]
)
def test_decode_html_reads_utf8_with_a_stray_byte_as_utf8_whatever_the_label(label):
    # a single-byte label fits any bytes (windows-* as WHATWG reads them): tried before UTF-8
    # with a stray byte, it garbled the whole page
    page = "<p>Иван Ёлкин: Київ є столицею України. Über die Straße, café.</p>" * 5
    damaged = page.encode().replace("є".encode(), b"\xff" + "є".encode(), 1)
    assert decode_html(damaged, label) == (page.replace("є", "\ufffdє", 1), "utf-8")
    french = "<p>Le café de la gare, crème brûlée à emporter.</p>" * 3
    assert decode_html(french.encode() + b"\xe9", label) == (french + "\ufffd", "utf-8")


@pytest.mark.parametrize(
    ("label", "byte"), [("windows-1257", 0xA5), ("windows-1253", 0xAA), ("windows-874", 0xFC)]
)
def test_decode_html_a_byte_whatwg_leaves_undefined_is_u_fffd_not_a_lost_page(label, byte):
    # it raised UnicodeDecodeError, and extract made the record an error row
    page = "<p>Vilnius yra Lietuvos sostinė, didžiausias šalies miestas.</p>"
    body = page.encode("cp1257", errors="replace") + bytes([byte])
    text, codec = decode_html(body, label)
    assert text.endswith("\ufffd") and codec == normalise_charset(label)


def test_decode_html_reads_windows_1255_as_whatwg_does():
    # 0xCA: HEBREW POINT HOLAM HASER FOR VAV, which Python's cp1255 leaves undefined
    body = "<p>שָׁלוֹם</p>".encode("cp1255") + b"\xca"
    assert decode_html(body, "windows-1255") == ("<p>שָׁלוֹם</p>\u05ba", "cp1255")


PORTUGUESE = (
    "<html><body><p>A câmara municipal reuniu-se na terça-feira para discutir o orçamento. O "
    "museu reabriu depois de uma longa renovação.</p></body></html>"
)
POLISH = "<html><body><p>Bilety kosztują dwanaście złotych.</p></body></html>"


@pytest.mark.parametrize(
    ("page", "charset", "url"),
    [
        (PORTUGUESE, "cp1252", "http://www.exemplo.com.br/noticias"),
        (PORTUGUESE, "cp1252", "https://user@jornal.pt.:8080/x"),  # userinfo, port, root dot
        (POLISH, "cp1250", "http://gazeta.PL/artykul"),
    ],
)
def test_decode_html_between_latin_codes_the_country_domain_decides(page, charset, url):
    # both fit these bytes; without the domain, detection read them as windows-1250 (or -1252)
    assert decode_html(page.encode(charset), None)[1] != charset
    assert decode_html(page.encode(charset), None, url) == (page, charset)


@pytest.mark.parametrize("url", [None, "http://example.com/", "not a url", "http://[::1/x"])
def test_decode_html_without_a_country_domain_detection_alone_decides(url):
    assert decode_html(PORTUGUESE.encode("cp1252"), None, url) == decode_html(
        PORTUGUESE.encode("cp1252"), None
    )


def test_decode_html_a_country_domain_leaves_an_iso_guess_its_windows_code_moved_letters_of():
    # ISO-8859-2's š, ž, ť are ą, ľ, » in windows-1250, which the mess measure does not mind
    page = (
        "<html><body><p>Příliš žluťoučký kůň úpěl ďábelské ódy. Šťastný Čech, řeka, žába."
        "</p></body></html>"
    )
    assert decode_html(page.encode("iso8859-2"), None) == (page, "iso8859-2")
    assert decode_html(page.encode("iso8859-2"), None, "http://noviny.cz/a") == (page, "iso8859-2")
    assert decode_html(page.encode("cp1250"), None, "http://noviny.cz/a") == (page, "cp1250")


def test_decode_html_a_country_domain_never_overrides_another_script():
    page = "<p>Городской совет собрался во вторник, чтобы обсудить новый бюджет.</p>" * 2
    for charset in ("cp1251", "koi8-r"):  # Russian on a Portuguese domain stays Russian
        assert decode_html(page.encode(charset), None, "http://noticias.pt/") == (page, charset)


SHARED_HTML = Path(__file__).resolve().parents[2] / "shared" / "data" / "html"


def test_a_meta_charset_late_in_the_head_or_after_a_commented_one_is_read():
    page = "<p>Příliš žluťoučký kůň úpěl ďábelské ódy.</p>"
    scripts = "<script>var x = 1;</script>" * 400  # 11 KB of head before the meta
    late = f"<html><head>{scripts}<meta charset=ISO-8859-2></head><body>{page}</body></html>"
    commented = f'<html><head><!-- <meta charset="utf-8"> --><meta charset=ISO-8859-2>{page}'
    in_body = f"<html><head></head><body>{scripts}<meta charset=ISO-8859-2>{page}</body></html>"
    assert meta_charset(late.encode("iso8859-2")) == "ISO-8859-2"
    assert meta_charset(commented.encode("iso8859-2")) == "ISO-8859-2"
    assert meta_charset(in_body.encode("iso8859-2")) is None  # after the head: not the page's
    assert decode_html(late.encode("iso8859-2"), None) == (late, "iso8859-2")


def _shared_page(relative: str) -> str:
    """A real page of ../shared/data/html, as written (UTF-8); the test skips without it."""
    path = SHARED_HTML / relative
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def _real_page(relative: str) -> str:
    """A real page with its <meta> charset tags taken out: detection decides."""
    html = _shared_page(relative)
    return re.sub(r"<meta[^>]*charset\s*=[^>]*>", "", html, flags=re.IGNORECASE)


def test_an_undeclared_page_cut_inside_a_character_is_detected_from_its_whole_lines():
    page = "<html><body>" + "<p>先日、不正に改造したiPhoneを販売した男性が逮捕された。</p>\n" * 30
    body = page.encode("shift_jis")[:-1]  # the crawler's cap fell inside the last character
    text, codec = decode_html(body[: body.rindex("男".encode("shift_jis")) + 1], None)
    assert codec == "cp932" and "不正に改造した" in text


def test_undeclared_greek_under_much_ascii_markup_is_read_as_greek():
    page = _real_page("trafilatura/pages/echte-demokratie-jetzt.de.blog.html.gz")
    text, codec = decode_html(page.encode("iso8859-7", errors="xmlcharrefreplace"), None)
    assert codec in ("iso8859-7", "cp1253") and "λαέ" in text


def test_an_undeclared_page_messy_in_every_chunk_takes_the_least_messy_code():
    # short lines, ruby and symbols: charset_normalizer finds no code under its 0.2 limit
    page = _real_page("readability/hukumusume/source.html.gz")
    text, codec = decode_html(page.encode("cp932", errors="xmlcharrefreplace"), None)
    assert codec == "cp932" and text == page.encode("cp932", "xmlcharrefreplace").decode("cp932")


def test_undeclared_legacy_text_after_the_last_newline_is_still_detected():
    # a minified page, or one cut mid-line: detection once read the ASCII lines before it only
    page = "<html>\n<body><p>" + "Die Neuen stehen für ein Neues Österreich. " * 20 + "</p>"
    text, codec = decode_html(page.encode("cp1252"), None, "https://www.neos.eu/wir")
    assert text == page and codec in ("cp1252", "cp1250")


def test_german_text_between_tags_is_not_taken_for_cyrillic():
    # its text alone read as KOI8-U in which no language was found
    page = _real_page("trafilatura/pages/zoll.de-Tabaksteuer.html.gz")
    body = page.encode("cp1252", errors="xmlcharrefreplace")
    assert decode_html(body, None, "https://www.zoll.de/x") == (body.decode("cp1252"), "cp1252")


@pytest.mark.parametrize("opener", [b"<!--", b"<script", b"<style", b"<"])
def test_an_unclosed_comment_script_or_tag_runs_to_the_end_of_the_page(opener):
    # matched so, the scan goes on from the end: 30,000 unclosed `<!--` each scanned to the
    # end of the page (19 s); now one match takes the rest, and the page is read once
    from curation.http import _COMMENT, _MARKUP

    body = b"text " + opener + b" and the rest <p" + b"x" * 1000
    assert _MARKUP.search(body).span() == (5, len(body))
    if opener == b"<!--":
        assert _COMMENT.search(body).span() == (5, len(body))


def test_a_short_single_byte_page_keeps_its_last_letters_for_detection():
    # less its last letters, a short Hebrew page was read as Cyrillic
    page = "<html><head><title>t</title></head><body><p>"
    page += "שלום, מה שלומך היום? ירושלים היא עיר יפה מאוד"  # ends in letters
    assert decode_html(page.encode("cp1255"), None) == (page, "cp1255")


def test_a_windows_1252_page_cut_after_a_curly_quote_keeps_its_quotes():
    # detected whole it was Mac Roman, which garbled every quote of the page
    page = _real_page("readability/royal-road/expected.html.gz")
    body = page.encode("cp1252", errors="xmlcharrefreplace")
    body = body[: body.index(b"so weird.\x94") + len(b"so weird.\x94")]
    text, codec = decode_html(body, None)
    assert codec in ("cp1252", "cp1250") and text.endswith("“You’re so weird.”")


def test_an_undeclared_german_page_with_no_clean_reading_stays_windows_1252():
    # read above the mess limit, it came out as Big5-HKSCS: "für" as "f僡"
    page = _shared_page("trafilatura/pages/ekhn.de-Pflegefinanzierung.html.gz")
    body = page.encode("cp1252", errors="xmlcharrefreplace")
    body = re.sub(rb"(<meta[^>]*?)charset\s*=\s*[\"']?\s*[\w.:-]+[\"']?", rb"\1", body, flags=re.I)
    body = body[: len(body) * 6 // 10]
    assert decode_html(body, None, "https://www.ekhn.de/x.html")[1] == "cp1252"


def test_with_no_clean_reading_a_script_without_a_language_does_not_replace_windows_1252():
    # the text between the tags read as KOI8-U, in which no language was found
    page = _real_page("trafilatura/pages/wehranlage-horka.de.887.html.gz")
    body = page.encode("cp1252", errors="xmlcharrefreplace")
    high = [i for i, byte in enumerate(body) if byte >= 0x80]
    body = body[: high[len(high) * 9 // 10] + 1]
    assert decode_html(body, None)[1] == "cp1252"
