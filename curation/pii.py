"""PII redaction: e-mail, IP, IBAN, phone, credit-card and US SSN spans become typed placeholders.

Each type is a precompiled regex that finds candidates plus a structural check that a regex
cannot express (Luhn, SSN number ranges, the grouping of a phone number, dates that look
like phone numbers). Patterns follow the formats' own rules rather than any data set:
RFC 5322 dot-atoms for e-mail, RFC 4291 text forms for IPv6, ISO 13616 (mod 97) for IBANs,
ISO/IEC 7812 for card numbers,
the SSA's allocation rules for SSNs and ITU-T E.164 / national groupings for phones.
Phone shapes that ordinary numbers also take (two groups, a bare run of digits) count only
next to a phone word (Presidio's context enhancement); of two groups, the NANP local number
(555-0199: a 3-digit exchange, then 4 digits) counts alone, with a space too (two numbers in
a row, as in "224 4966 Bond Street", are taken for one: a trade measured in
docs/BENCHMARKS.md), unless a unit or an era follows it (300-1200 mg). Where two candidates
overlap, the more specific type wins (`PII_TYPES` order), then the earlier, then the longer
span. Every type is looked for, whichever are redacted: a type left out stays as written,
and no less specific type takes its values (an IP address is no phone number).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, get_args

import pyarrow as pa

from curation.filters.base import Document, DocumentFilter
from refinery.config import ConfigError

# Most specific first: overlaps are resolved in this order.
PIIType = Literal["EMAIL", "IP", "IBAN", "CREDIT_CARD", "SSN", "PHONE"]
PII_TYPES: tuple[str, ...] = get_args(PIIType)
_PRIORITY = {kind: i for i, kind in enumerate(PII_TYPES)}


class PIISpan(NamedTuple):
    start: int
    end: int
    kind: str


def _ranges(codes: list[int]) -> str:
    """A regex class body of the code points, as runs `a-b`."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in runs)


def _marks_and_fold() -> tuple[str, dict[int, str]]:
    r"""Combining marks (Mn, Mc, Me: Indic vowel signs and viramas, Thai vowels, accents in NFD),
    which `\w` lacks, as a class; and the one-for-one folding of the text the finders read:
    every decimal digit to its ASCII one, full-width letters and signs to ASCII, no-break and
    other fixed spaces to a space, hyphens and the minus sign to '-'. A fold keeps each
    character's place, so the spans found in the folded text are the spans of the text."""
    marks, fold = [], {}
    for code in range(0x10000):  # the plane with the marks and digits in common use
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Mn", "Mc", "Me"):
            marks.append(code)
        elif category == "Nd" and code > 0x7F:
            fold[code] = str(unicodedata.decimal(char))
    # full-width letters, digits and the signs PII is written with (not ，！？；, which
    # Chinese prose is full of: rewriting them made its redaction twice as slow)
    ascii_forms = string.ascii_letters + string.digits + "@.-+()/_%':"
    fold.update({ord(char) + 0xFEE0: char for char in ascii_forms})
    fold.update(dict.fromkeys([0x00A0, 0x2007, 0x202F, 0x3000, *range(0x2000, 0x200B)], " "))
    fold.update(dict.fromkeys([0x2010, 0x2011, 0x2012, 0x2212, 0xFE63], "-"))
    return _ranges(marks), fold


_MARKS, _FOLD = _marks_and_fold()
_FOLDABLE = re.compile(f"[{_ranges(sorted(_FOLD))}]+")


def _fold(run: re.Match[str]) -> str:
    return run[0].translate(_FOLD)


# Han, kana, Hangul, Thai, Lao, Myanmar and Khmer are word characters, and these languages put
# no space between words: an address or a number written among them would take the words
# beside it along, or never be found.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
)

# --- e-mail: RFC 5322 dot-atom local part @ LDH domain labels, letters-only TLD ------------
# Unicode word characters are allowed (RFC 6531 internationalised addresses), and combining
# marks, which `\w` lacks, so a name in NFD (e + U+0301) or in Devanagari (सुनील) is one
# word; the rarely used quoted local parts and the atext symbols other than ' % + - _ are
# not (an apostrophe only inside the local part: o'brien@example.ie). A top-level domain is
# letters (and marks), or its ASCII form (`xn--p1ai`, .рф).
_EMAIL = re.compile(
    # not inside a local part (a'a'a'...@ was read from each of its starts on to the @:
    # quadratic), but after an ellipsis, which no local part holds (for details...john@)
    rf"(?<![\w{_MARKS}%+-])(?<![^.]\.)(?<![\w{_MARKS}]')"
    rf"[\w{_MARKS}%+-]+(?:['.][\w{_MARKS}%+-]+)*"
    rf"@(?:[^\W_](?:[\w{_MARKS}-]{{0,61}}(?:[^\W_]|[{_MARKS}]))?\.)+"
    rf"(?:xn--[a-zA-Z0-9]{{1,59}}|[^\W\d_](?:[^\W\d_]|[{_MARKS}]){{1,62}})"  # xn-- first
    # not `q@k.transpose(-2, -1)` or `a@w.b.mean()`: a chain of names ending in a call on a
    # matrix product, as a method takes it (no argument, or a number closed by `,` or `)`:
    # not `hong@example.co.kr(09:00-18:00)` or `(24小时在线)`). Not a sentence's full
    # stop (john@example.com.(555) ...), nor words of an unspaced script, which the match
    # takes along and `_without_unspaced_neighbours` cuts off (info@example.jpまで(24時間));
    # looked at only so far on, so that no text is read again from each place a long match
    # backs off to. A digit may follow (a footnote: jdoe@mit.edu1), and a dash made of two
    # hyphens (john@example.com--we answer), not a letter, `_` or a label's hyphen.
    rf"(?![^\W\d]|[{_MARKS}]|-(?!-)"
    rf"|(?:\.?(?![{_UNSPACED}])[\w{_MARKS}-]){{0,80}}(?<![{_UNSPACED}])"
    rf"\((?:\)|-?\d[\d.]*\s*[,)]))"
)
# An image named at a resolution (logo@2x.png) is a file, not an address: no such TLDs exist.
_FILE_SUFFIX = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|avif|ico|bmp)$", re.IGNORECASE)
# up to the last such letter before others; from the first such letter after others
_UNSPACED_THEN_OTHER = re.compile(rf"^.*[{_UNSPACED}](?=[^{_UNSPACED}])")
_OTHER_THEN_UNSPACED = re.compile(rf"(?<=[^{_UNSPACED}.])[{_UNSPACED}].*$")


def _not_after(chars: str, label: str = "") -> str:
    """A number's start: not after a word character or `chars`, but after a letter of an
    unspaced script (the usual case tried first: a negated class of both is slower), or
    after the `label` ending (a lookbehind pattern) that precedes a number only."""
    also = rf"|(?<={label})" if label else ""
    return rf"(?<!\d)(?:(?<![\w{chars}])|(?<=[{_UNSPACED}]){also})"  # inside a number: at once


def _not_before(pattern: str) -> str:
    """A number's end: no word character or `pattern` next, but a letter of an unspaced
    script may be."""
    return rf"(?:(?!\w|{pattern})|(?=[{_UNSPACED}]))"


# --- IP addresses ---------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255, no leading zeros
# 000-255, as logs and configs align them; not ending .000.000, as amounts with dots for
# thousands do (Rp 100.000.000.000)
_PADDED_OCTET = r"(?:25[0-5]|2[0-4]\d|[01]\d\d)"
_PADDED_IPV4 = rf"(?!\d{{3}}\.\d{{3}}\.000\.000){_PADDED_OCTET}(?:\.{_PADDED_OCTET}){{3}}"
_IPV4 = rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}|{_PADDED_IPV4})"
_H = r"[0-9A-Fa-f]{1,4}"
# RFC 4291 §2.2: the full form, every position of the `::` compression, and IPv4 tails.
_IPV6 = "|".join(
    [
        rf"(?:{_H}:){{6}}{_IPV4}",
        rf"(?:{_H}:){{1,5}}:(?:{_H}:){{0,4}}{_IPV4}",
        rf"::(?:{_H}:){{0,5}}{_IPV4}",
        rf"(?:{_H}:){{7}}{_H}",
        *(rf"(?:{_H}:){{{k}}}(?::{_H}){{1,{7 - k}}}" for k in range(6, 0, -1)),
        rf"(?:{_H}:){{1,7}}:",
        rf"::{_H}(?::{_H}){{0,6}}",
    ]
)
# The leading look-ahead (a colon, or 1-4 hex digits and a separator) lets the scan skip
# ordinary words before trying the alternatives. An IPv6 address must not run on into a colon
# (it would be cut short); an IPv4 address may, as before its port (`10.0.0.5:22`).
_DOT_DIGIT = r"\.\d"
# An IPv4 address may follow a label's colon (`IP:10.0.0.1`, `remote_addr:203.0.113.7`),
# not a number's (`1:8.2.0.1`, a version), where an IPv6 group cannot start (it would be the
# tail of a longer address).
_IP = re.compile(
    rf"(?=:|[0-9A-Fa-f]{{1,4}}[:.])"
    rf"(?:{_not_after('.:')}(?:{_IPV6}){_not_before(':|' + _DOT_DIGIT)}"
    rf"|{_not_after('.')}(?<!\d:){_IPV4}{_not_before(_DOT_DIGIT)})"
)
# A dotted number after one of these words is a version or a section, not an address
# (1.2.3.4 releases, Section 3.2.1.4); before one of the last, a version too (10.0.0.1 firmware).
# Written right before it, a browser's product token in a user agent (Chrome/120.0.0.0, in
# every Chrome's; HeadlessChrome/, EdgA/) or a version call (AssemblyVersion("1.0.0.0"))
# makes it a version as well; right after it, a file name's suffix (foo-1.2.3.4.tar.gz). Not
# any word and a slash or an `==`: Squid logs write HIER_DIRECT/93.184.216.34, Wireshark
# filters ip.addr==10.0.0.1.
_VERSION_WORD = re.compile(
    r"(?:(?:\b(?:version|ver|v|release|build|firmware|section|sec|chapter|clause)|§"
    r"|版本号?|バージョン|버전)\.?\s*[:：]?\s*"
    r"|\b(?:(?:headless)?chrome|chromium|crios|firefox|fxios|safari|edg[ae]?|opr|opera"
    r"|applewebkit|gecko|yabrowser)/"
    r"|version\(\s*[\"']?)$",
    re.IGNORECASE,
)
_VERSION_AFTER = re.compile(
    r"\s*(?:firmware|release)\b|\.(?:tar|tgz|zip|whl|jar|exe|msi|dmg|deb|rpm|apk|gz)\b",
    re.IGNORECASE,
)

# --- IBANs: ISO 13616, a country code, two check digits and up to 30 letters and digits -----
# Printed in groups of four with a space, or run together. The registry's country codes and
# the mod-97 check tell them from codes of the same shape; before this type, banks' groups of
# digits passed for cards or phones, and part of the number was left. Not in capitals, only
# next to an IBAN word: 1 lowercase hex digest (MD5) in 10,000 passes both checks.
_IBAN = re.compile(
    r"(?<!\w)(?P<country>[A-Z]{2})\d{2}(?P<sep> ?)[A-Z0-9]{4}(?:(?P=sep)[A-Z0-9]{4}){1,6}"
    r"(?:(?P=sep)[A-Z0-9]{1,3})?(?!\w)",
    re.IGNORECASE | re.ASCII,  # Unicode case folding would take the Kelvin sign for a K
)
_DIGIT_PAIR = re.compile(r"[0-9]{2}")
_IBAN_LENGTH = (15, 34)  # Norway's to Saint Lucia's
_IBAN_CONTEXT = re.compile(r"\b(?:iban|bank|account|konto|compte|conto|cuenta)\b", re.IGNORECASE)
_IBAN_COUNTRIES = frozenset(  # the IBAN registry's, as pairs of letters
    re.findall(
        "..",
        "ADAEALATAZBABEBGBHBIBRBYCHCRCYCZDEDJDKDOEEEGESFIFKFOFRGBGEGIGLGRGTHNHRHUIEILIQISITJOKW"
        "KZLBLCLILTLULVLYMCMDMEMKMNMRMTMUNINLNOOMPKPLPSPTQARORSRUSASCSDSESISKSMSOSTSVTLTNTRUAVA"
        "VGXKYE",
    )
)

# --- credit cards: ISO/IEC 7812 numbers, 13-19 digits, as printed or run together ----------
# Groups of four (Visa, Mastercard, Discover, 13-19 digits), 4-6-5 / 4-6-4 (Amex, Diners).
# Maestro also issues 12-digit numbers (4-4-4 or run together); a tenth of all 12-digit
# numbers pass Luhn, so those count only next to a card word, as do unseparated runs inside
# a URL or path (`_in_url`).
_CARD = re.compile(
    rf"(?=\d){_not_after('+-')}"
    r"(?:\d{4}(?P<s1>[ -])\d{4}(?P=s1)\d{4}(?P=s1)\d{1,4}(?:(?P=s1)\d{3})?"
    r"|\d{4}(?P<s2>[ -])\d{6}(?P=s2)\d{4,5}"
    r"|\d{4}(?P<s3>[ -])\d{4}(?P=s3)\d{4}"
    r"|\d{12,19})" + _not_before("-")
)
# Major industry identifiers 1-6 are airlines, banking and finance; 7-9 (petroleum,
# telecom, national) never issue payment cards, which also keeps ISBN-13s (978/979) out.
_CARD_FIRST_DIGITS = "123456"
_CARD_CONTEXT = re.compile(
    r"\b(?:card|cc|credit|debit|maestro|visa|mastercard|amex)\b", re.IGNORECASE
)

# --- US SSN: AAA-GG-SSSS; bare nine digits only next to an SSN word -------------------------
_SSN = re.compile(
    rf"(?=\d){_not_after('-')}"
    r"(?P<area>\d{3})(?P<sep>[- ]?)(?P<group>\d{2})(?P=sep)(?P<serial>\d{4})" + _not_before(r"-\d")
)
_SSN_CONTEXT = re.compile(r"\b(?:ssn|ssns|social security)\b", re.IGNORECASE)
# A country code just before: "+49 555 12 3456" is a phone number grouped 3-2-4.
_COUNTRY_CODE_BEFORE = re.compile(r"(?:\+[1-9]\d{0,2}|\b00[1-9]\d{0,2})[-. ]?$")

# --- phone numbers ---------------------------------------------------------------------------
_SEPARATOR = re.compile(r"[-. /]")
_HOURS = re.compile(r"\d{1,2}[.:]\d{2} ?- ?\d{1,2}[.:]\d{2}")
# An optional international prefix (+CC, or 00CC and a separator so that a run of digits
# starting with 00 is no prefix; country codes never start with 0), an optional area code
# in parentheses ("(0)" trunk digit, "(08)", "(602)", "(0161)"; not a 4-digit year), digit
# groups joined by one consistent separator, and an optional extension. The look-aheads
# skip what cannot start a number, and numbers with fewer than six digits, before the regex
# does any work.
# a run of "(((" fails at once (a character class first keeps the scan fast)
# `Mobile:-98765 43210`, as Indian pages label numbers: that hyphen ends a label, not a number
_PHONE_NOT_AFTER = _not_after("+/.-", label=":-")
_PHONE_START = rf"(?=[\d+(])(?![+(]\D){_PHONE_NOT_AFTER}"
_PHONE_PREFIX = r"(?P<intl>\+[1-9]\d{0,2}[-. ]?|00[1-9]\d{0,2}[-. ])?(?P<area>\(0?\d{1,3}\)[-. ]?)?"
_PHONE_END = _not_before(r"@|[-.]\d")
_PHONE = re.compile(
    rf"{_PHONE_START}(?=(?:[+(). -]*\d){{6}}){_PHONE_PREFIX}"
    r"(?P<body>\d{1,12}(?:(?P<sep>[-. ])\d{1,12}(?:(?P=sep)\d{1,12})*)?)"
    r"(?P<ext>[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?" + _PHONE_END,
    re.IGNORECASE,
)
# Groups joined by more than one kind of separator, or by slashes, as Russian, Dutch and
# German numbers are printed (+7 912 345-67-89, 020-123 4567, 030/1234567); `_PHONE` reads
# one consistent separator, and would leave part of such a number (or all of it). Such a
# number starts with a country code, an area code in parentheses or a trunk prefix (0, or
# Russia's 8): other starts fail at their first character, which keeps the scan cheap.
_PHONE_MIXED = re.compile(
    rf"(?=[+(08])(?![+(]\D){_PHONE_NOT_AFTER}(?=(?:[+(). /-]*\d){{7}}){_PHONE_PREFIX}"
    rf"(?P<body>\d{{1,12}}(?:{_SEPARATOR.pattern}\d{{1,12}}){{2,}}|\d{{1,12}}/\d{{1,12}})"
    + _PHONE_END
)
# Two different separators around a group of digits, or a slash between digits: what every
# `_PHONE_MIXED` number holds, found at under half its cost (prose seldom has one).
_MIXED_SEPARATORS = re.compile(r"\d(?:/|([-. ])\d{1,12}(?!\1)[-. /])\d")
# ITU-T E.164: at most 15 digits with the country code. Six is the shortest subscriber
# number (Greenland, the Faroes); such short ones need context anyway.
_PHONE_DIGITS = (6, 15)
# Presidio's PhoneRecognizer context words (without the over-general "number"), plus the
# labels of contact blocks, and their words in the other languages the language filter keeps
# by default (de, es, fr, it, nl, pt, ru): those pages label phones in their own. Chinese,
# Japanese, Korean, Arabic and Hindi words ("phone", "call", "contact") join the words
# around them, so they are matched inside words. Not the `<PHONE>` placeholder: a second
# `redact` would take a number beside one for a phone the first left.
_PHONE_CONTEXT = re.compile(
    r"(?<!<)\b(?:phone|telephone|tel|cell|cellphone|mobile|call|called|calling|fax|dial|sms|"
    r"whatsapp|contact|reach|office|hotline|"
    r"telefon|telefono|teléfono|telefone|telefoon|téléphone|tél|tlf|handy|mobil|móvil|"
    r"movil|cellulare|celular|kontakt|contacto|contatto|телефон|тел)\b"
    r"|电话|電話|手机|手機|致电|致電|联系|聯絡|連絡|携帯|お問い合わせ|전화|휴대폰|연락처"
    r"|هاتف|اتصل|جوال|تلفون|फ़ोन|फ़ोन|फोन|मोबाइल|दूरभाष|संपर्क",
    re.IGNORECASE,
)
# A Chinese site's licence number (京ICP备05070218号), a product or order number, a number
# after 第 ("No."), and a bare run of digits a counter follows at once (浏览量1234567次,
# 总价12800000元): ids, counts and prices, which the phone words of a page's footer
# (联系我们, "contact us") would otherwise make phones. Not 年, 月, 日, 人 or 号: a phone is
# followed by 年中無休, 月～金, 人工服务 or 号码, and a phone-shaped run stays a phone
# before any of them.
_ID_BEFORE = re.compile(r"(?:ICP[备證证]?|编号|編號|订单号?|訂單號?|第)\s*:?\s*$", re.IGNORECASE)
_COUNTER_AFTER = re.compile(r"[次篇件页頁元个個条條位万萬亿億]")  # right after bare digits
# Bare digits a counter may follow and still be a phone: a Chinese mobile, a number with
# its trunk 0, a 400/800 service line (13800138000万事如意, 0755…位于, 4008008888元旦)
_PHONE_SHAPED = re.compile(r"1[3-9]\d{9}|0\d+|[48]00\d{7}")
# A number range as a label, as registries list code ranges ("0-255: Expert Review")
_RANGE_LABEL = re.compile(r"(?<![\w-])\d+-\d+:")
# What follows a range of quantities (300-1200 mg, 500-1000°C, 250-5000 words, 800-1400 AD):
# signs, units and counted nouns in lower case, eras in capitals, no Latin letter after them
# (km², mg을 and mg左右, not "kmó"; not "mi", Spanish "my"). No one-letter unit, and no
# capitalised word: "555-1234 M-F", "555-1234 W Main St" are phone numbers.
_QUANTITY_AFTER = re.compile(
    r" ?(?:[%°‰]|(?:mg|kg|km|cm|mm|nm|ml|ft|lbs?|oz|[kmg]?hz|kwh|k?cal|ppm|degrees?|metres"
    r"|meters|miles|feet|words|pages|people|years|times|units|copies|tons|tonnes"
    r"|AD|BC|BCE|CE|A\.D\.|B\.C\.|C\.E\.|B\.C\.E\.)(?![A-Za-zÀ-ÖØ-öø-ɏ]))"
)
# A US state code before 5-4 digits: a ZIP+4 code (CA 94129-0244), not a phone number.
_STATE_BEFORE = re.compile(r"\b[A-Z]{2}\.?\s+$")
# A number right after an address unit word is a unit or box number ("Suite 541 6343 ...").
_ADDRESS_UNIT = re.compile(
    r"\b(?:apt|apartment|suite|ste|unit|box|room|floor)\.?\s*$", re.IGNORECASE
)
# How far around a candidate a context word may sit (characters before, after).
_CONTEXT_WINDOW = (40, 20)


def find_pii(text: str, kinds: tuple[str, ...] = PII_TYPES) -> list[PIISpan]:
    """Non-overlapping PII spans of the given types, in text order, found in the text folded
    one character for one (`_FOLD`: ٠١٢ and full-width digits, no-break spaces). Candidates
    of the types more specific than a requested one compete for the text too, so leaving a
    type out never hands its values to another; less specific ones could never take a span
    from it."""
    least = max(_PRIORITY[kind] for kind in kinds) if kinds else -1
    folded = _FOLDABLE.sub(_fold, text)  # same length: spans found in it are the text's
    candidates: list[PIISpan] = []
    for kind, finder in _FINDERS.items():
        if _PRIORITY[kind] <= least:
            candidates.extend(finder(folded))
    candidates.sort(key=lambda s: (_PRIORITY[s.kind], s.start, s.start - s.end))
    taken: list[PIISpan] = []  # disjoint, so sorted by start and by end alike
    for span in candidates:
        i = bisect.bisect_left(taken, span)
        if (i and taken[i - 1].end > span.start) or (i < len(taken) and taken[i].start < span.end):
            continue
        taken.insert(i, span)
    return [span for span in taken if span.kind in kinds]


def redact(text: str, kinds: tuple[str, ...] = PII_TYPES) -> tuple[str, dict[str, int]]:
    """`text` with each PII span replaced by `<TYPE>`, and the number of spans per type found."""
    spans = find_pii(text, kinds)
    if not spans:
        return text, {}
    pieces, last = [], 0
    for span in spans:
        pieces += [text[last : span.start], f"<{span.kind}>"]
        last = span.end
    pieces.append(text[last:])
    return "".join(pieces), dict(Counter(span.kind for span in spans))


def _emails(text: str) -> list[PIISpan]:
    if "@" not in text:
        return []
    matches = (m for m in _EMAIL.finditer(text) if not _FILE_SUFFIX.search(m[0]))
    spans = (_without_unspaced_neighbours(m.group(), m.start()) for m in matches)
    return [span for span in spans if span]


def _without_unspaced_neighbours(found: str, start: int) -> PIISpan | None:
    """The address in a match that ran into CJK (or Thai, ...) text around it: a local part
    loses what precedes its last such character when other characters follow it, the domain
    what follows its first such character after others (電話はtanaka@example.jpまで). An
    address written in those scripts alone (用户@例子.广告) stays whole."""
    local, domain = found.split("@", 1)
    head = _UNSPACED_THEN_OTHER.match(local)
    cut_local = local[head.end() :] if head else local
    cut_domain = _OTHER_THEN_UNSPACED.sub("", domain)
    if (cut_local, cut_domain) == (local, domain):
        return PIISpan(start, start + len(found), "EMAIL")
    address = f"{cut_local}@{cut_domain}"
    if not _EMAIL.fullmatch(address):
        return None
    begin = start + len(local) - len(cut_local)
    return PIISpan(begin, begin + len(address), "EMAIL")


def _ips(text: str) -> list[PIISpan]:
    return [
        PIISpan(m.start(), m.end(), "IP")
        for m in _IP.finditer(text)
        if not _after_version_word(text, m.start(), m.end())
        and (":" not in m[0] or _ipv6_address(m[0], text, m.start()))
    ]


# An open subscript before a match: `name[`, `)[` or `][`, then anything but brackets
_SUBSCRIPT = re.compile(r"[\w)\]]\[[^\[\]\n]*$")


def _ipv6_address(found: str, text: str, start: int) -> bool:
    """False for IPv6 shapes that are code or words: `dead::beef` (no digit), a slice in a
    subscript (`a[::2]`, `x[1::3]`, `xs[a::2]`: at most two groups, numbers or short names; a URL's
    `http://[::1]/` opens its bracket after a slash, and `ip[fe80::1]` is no slice), and
    groups of at most two decimal digits elsewhere; the loopback `::1` is an address there.
    Nor two groups the first of them letters (`DBD::DB2`, a Perl module): a network prefix
    written so (fe80::, 2001:db8::, fd00::, ff02::) has digits."""
    if not any(c.isdigit() for c in found):
        return False
    groups = [g for g in found.split(":") if g]
    if len(groups) == 2 and "::" in found and groups[0].isalpha() and "." not in found:
        return False
    # a slice's bounds and step: numbers or short names (`xs[a::2]`), never `fe80` or `db8`
    bounds = all(g.isdigit() or len(g) <= 2 for g in groups)
    if bounds and len(groups) <= 2 and _SUBSCRIPT.search(text, max(0, start - 80), start):
        return False
    return found == "::1" or not all(g.isdigit() and len(g) <= 2 for g in groups)


def _ibans(text: str) -> list[PIISpan]:
    # The regex is tried only where two ASCII letters precede two digits: scanning for the
    # digits is a quarter of the cost of trying it at every position (benchmarks/pii_quality)
    spans: list[PIISpan] = []
    for pair in _DIGIT_PAIR.finditer(text):
        start = pair.start() - 2
        country = text[max(start, 0) : pair.start()]
        if start < 0 or not (country.isascii() and country.isalpha()):
            continue
        m = _IBAN.match(text, start)
        if not m or (spans and start < spans[-1].end):
            continue
        code = m[0]
        # The regex is greedy: the word or number after a grouped code (BIC, EUR, "and") reads
        # as its last group. Groups are dropped from the end until the check passes: each one
        # tried is another 1 in 97 for a code that is no IBAN (a PGP fingerprint's groups),
        # but left as it was, the digits of the IBAN's middle pass for a card or a phone.
        while m["sep"] and not iban_valid(code) and code.count(" ") > 3:
            code = code.rsplit(" ", 1)[0]
        end = start + len(code)
        if iban_valid(code) and (code.isupper() or _has_context(_IBAN_CONTEXT, text, start, end)):
            spans.append(PIISpan(start, end, "IBAN"))
    return spans


def _cards(text: str) -> list[PIISpan]:
    spans = []
    for m in _CARD.finditer(text):
        found = m[0]
        if m["s1"] and len(found) == 23 and not _is_card(text, m.start(), found):
            found = found[:-4]  # four groups and a card's 3-digit CVV, not a 19-digit card
        if _is_card(text, m.start(), found):
            spans.append(PIISpan(m.start(), m.start() + len(found), "CREDIT_CARD"))
    return spans


def _is_card(text: str, start: int, found: str) -> bool:
    digits = re.sub(r"\D", "", found)
    end = start + len(found)
    bare = len(digits) < 13 or (digits == found and _in_url(text, start, end))
    return (
        (not bare or _has_context(_CARD_CONTEXT, text, start, end))
        and digits[0] in _CARD_FIRST_DIGITS
        and len(set(digits)) > 1
        and luhn_valid(digits)
    )


def _in_url(text: str, start: int, end: int) -> bool:
    """Whether the digits sit in a URL or path (`/web/20000229123340/`, `?ids=1,2`,
    `app.js?1614556800008`): long numbers there are timestamps and ids, a tenth of which pass
    Luhn. They are a path segment (a `/` right before them, or a `/` or `=` right after), or
    their token (up to the white space before them) has an `=` before them, or a `://` or
    `www.` with no cell delimiter (`,;|"'`) between. A data dump's row is one token: a date
    or a website in an earlier cell (`Smith,3/29/1982,5555555555554444`,
    `jsmith|www.jsmith.example|4532015112830366`) leaves the card a card."""
    if text[start - 1 : start] == "/" or text[end : end + 1] in ("/", "="):
        return True
    marks = _url_marks(text)
    i = bisect.bisect_left(marks.breaks, start)
    token_start = marks.breaks[i - 1] + 1 if i else 0
    k = bisect.bisect_left(marks.equals, token_start)
    if k < len(marks.equals) and marks.equals[k] < start:
        return True
    k = bisect.bisect_left(marks.urls, start) - 1  # the last URL start before the digits
    if k < 0 or marks.urls[k] < token_start:
        return False
    d = bisect.bisect_left(marks.cells, marks.urls[k])
    return d == len(marks.cells) or marks.cells[d] > start


class _UrlMarks(NamedTuple):
    breaks: list[int]  # white space
    equals: list[int]  # a query's `=`
    urls: list[int]  # `://` and `www.`
    cells: list[int]  # `,;|"'`, between a row's cells


_URL_MARKS = (r"\s", r"=", r"://|www\.", r"[,;|\"']")  # in _UrlMarks' order


@functools.lru_cache(maxsize=1)
def _url_marks(text: str) -> _UrlMarks:
    """Where `text` has each kind of mark `_in_url` reads: found once a text (searched for
    each long number, a 2.5 MB line of them took 21 s)."""
    return _UrlMarks(*([m.start() for m in re.finditer(pattern, text)] for pattern in _URL_MARKS))


def _ssns(text: str) -> list[PIISpan]:
    return [
        PIISpan(m.start(), m.end(), "SSN")
        for m in _SSN.finditer(text)
        if ssn_valid(m["area"], m["group"], m["serial"])
        and (m["sep"] or _has_context(_SSN_CONTEXT, text, m.start(), m.end()))
        and not _COUNTRY_CODE_BEFORE.search(text, max(0, m.start() - 6), m.start())
    ]


def _phones(text: str) -> list[PIISpan]:
    matches = [m for m in _PHONE.finditer(text) if _is_phone(m, text)]
    if _MIXED_SEPARATORS.search(text):
        matches += [m for m in _PHONE_MIXED.finditer(text) if _is_mixed_phone(m, text)]
    return [
        PIISpan(m.start(), m.end(), "PHONE")
        for m in matches
        if not _ID_BEFORE.search(text, max(0, m.start() - 8), m.start())
        and not (
            m[0].isdigit()
            and not _PHONE_SHAPED.fullmatch(m[0])
            and _COUNTER_AFTER.match(text, m.end())
        )
    ]


_FINDERS = {
    "EMAIL": _emails,
    "IP": _ips,
    "IBAN": _ibans,
    "CREDIT_CARD": _cards,
    "SSN": _ssns,
    "PHONE": _phones,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 checksum of ISO/IEC 7812 card numbers."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, letters read as 10-35,
    the number is 1 mod 97."""
    code = iban.replace(" ", "").upper()
    if code[:2] not in _IBAN_COUNTRIES or not _IBAN_LENGTH[0] <= len(code) <= _IBAN_LENGTH[1]:
        return False
    return int("".join(str(int(c, 36)) for c in code[4:] + code[:4])) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area never 000, 666 or 9xx (ITINs); group never 00; serial never 0000."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def _is_phone(m: re.Match[str], text: str) -> bool:
    groups = m["body"].split(m["sep"]) if m["sep"] else [m["body"]]
    lengths = [len(g) for g in groups]
    n_digits = sum(c.isdigit() for c in (m["intl"] or "") + (m["area"] or "") + m["body"])
    if not _PHONE_DIGITS[0] <= n_digits <= _PHONE_DIGITS[1] or _after_currency(text, m.start()):
        return False
    if m["sep"] == "." and _after_version_word(text, m.start(), m.end()):
        return False
    if m["intl"] or m["area"]:
        # "+46 (0)8 928 571 38": after a prefix the first group may be a single digit. A "00"
        # prefix leaves a subscriber number of six digits or more: "0028-0836" is an ISSN.
        if (m["intl"] or "").startswith("00") and sum(map(len, groups)) < 6:
            return False
        return n_digits >= 8 and min(lengths[1:], default=2) >= 2
    if m["ext"]:
        return n_digits >= 7
    if _looks_like_range(groups, m["sep"], text, m.start(), m.end()):
        return False
    if lengths == [5, 4] and _STATE_BEFORE.search(text, max(0, m.start() - 5), m.start()):
        return False
    if (
        _looks_like_date(groups)
        or _looks_like_years(groups)
        or _looks_like_count(groups, m["sep"])
        or _looks_like_thousands(groups, m["sep"])
        or _ADDRESS_UNIT.search(text, max(0, m.start() - 12), m.start())
    ):
        return False
    if _national_grouping(groups, m["sep"], n_digits):
        return True
    # Two groups, short or space-separated groups and bare runs are also how counts, codes
    # and ids are written: phones only next to a phone word.
    # A dotted pair with at most two digits first is a decimal (48.858844, 12.345678 GB),
    # unless they are an area code with its trunk 0 (Milan's 02.72000123).
    weak = (
        (
            len(groups) == 2
            and min(lengths) >= 2
            and n_digits >= 7
            and not (m["sep"] == "." and lengths[0] <= 2 and groups[0][0] != "0")
        )
        or (len(groups) >= 3 and min(lengths) >= 2)
        or (len(groups) == 1 and 7 <= n_digits <= 11)
    )
    return weak and _has_context(_PHONE_CONTEXT, text, m.start(), m.end())


def _is_mixed_phone(m: re.Match[str], text: str) -> bool:
    """Mixed or slash separators: national styles, but also how dates with times, fractions
    and codes are written, so only after a country or area code, or near a phone word."""
    separators = set(_SEPARATOR.findall(m["body"]))
    if len(separators) < 2 and "/" not in separators:
        return False  # one separator, not a slash: `_PHONE` reads it
    groups = _SEPARATOR.split(m["body"])
    n_digits = sum(c.isdigit() for c in (m["intl"] or "") + (m["area"] or "") + m["body"])
    prefixed = m["intl"] or m["area"]
    if (
        not _PHONE_DIGITS[0] <= n_digits <= _PHONE_DIGITS[1]
        or not (prefixed or groups[0][0] in "08")  # 19/12345, 12 345-678: ids and amounts
        or min(len(g) for g in groups[1:]) < 2
        or _HOURS.fullmatch(m["body"])  # 08.00-17.00: opening hours
        or _looks_like_thousands_in(m["body"])  # 12.500-15.000: prices
        or _after_currency(text, m.start())
        or ("." in separators and _after_version_word(text, m.start(), m.end()))
        or _looks_like_years(groups)
        or any(_looks_like_date(groups[i : i + 3]) for i in range(len(groups) - 2))
    ):
        return False
    if prefixed:
        return n_digits >= 8
    return n_digits >= 7 and _has_context(_PHONE_CONTEXT, text, m.start(), m.end())


def _looks_like_thousands_in(body: str) -> bool:
    """Every group after a dot has three digits (12.500-15.000), as amounts are written."""
    after_dots = re.findall(r"\.(\d+)", body)
    return bool(after_dots) and all(len(g) == 3 for g in after_dots)


def _national_grouping(groups: list[str], sep: str | None, n_digits: int) -> bool:
    """Shapes that are phone numbers on their own (0490 75 40 81, 1-800-555-0199, 555-0199)."""
    lengths = [len(g) for g in groups]
    if lengths == [3, 2, 4] and sep == "-":  # the SSN shape; an invalid SSN is no phone
        return False
    if len(groups) >= 3 and n_digits >= 8 and 2 <= lengths[0] <= 5:
        # Space-separated numbers are also how lists, scores and lottery draws are written:
        # alone, only the trunk-0 national form (01 23 45 67 89) or NANP 555 123 4567 count.
        if sep == " " and groups[0][0] != "0" and lengths[-3:] != [3, 3, 4]:
            return False
        return max(lengths[1:]) <= 4 and min(lengths[1:]) >= 2
    if groups[0] == "1" and lengths[1:] == [3, 3, 4]:  # NANP with its trunk digit
        return True
    # NANP local number 555-0199: the exchange never starts with 0 or 1. With a space as well:
    # needing a phone word there cost 5 of the 159 labelled phones for 4 false ones (street
    # numbers) of `benchmarks/pii_quality.py`, recall 0.956 -> 0.925 against a 0.95 target.
    return lengths == [3, 4] and groups[0][0] not in "01"


def _looks_like_date(groups: list[str]) -> bool:
    """YYYY-MM-DD, DD.MM.YYYY or MM DD YYYY with a plausible year, month and day."""
    if [len(g) for g in groups] == [4, 2, 2]:
        year, parts = groups[0], groups[1:]
    elif [len(g) for g in groups] == [2, 2, 4]:
        year, parts = groups[2], groups[:2]
    else:
        return False
    a, b = (int(p) for p in parts)
    plausible = (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)
    return year[0] in "12" and plausible


def _looks_like_years(groups: list[str]) -> bool:
    """2019-2020-2021: a run of rising years, as seasons and editions are written."""
    years = [int(g) for g in groups if len(g) == 4]
    return (
        len(years) == len(groups)
        and all(1800 <= y <= 2100 for y in years)
        and years == sorted(set(years))
    )


def _looks_like_range(groups: list[str], sep: str | None, text: str, start: int, end: int):
    """The NANP local shape, rising, with no phone word near, as a range: of quantities, a unit
    or an era after it (300-1200 mg, 800-1400 AD: six in a page rejected it as pii_density),
    or a label in a text that labels another range so (IANA's registries: "0-255: ...",
    "256-9999: ..."). A lone 555-1234, rising too, is a phone number, and so is
    "555-1234: ask for Bob"."""
    if sep != "-" or [len(g) for g in groups] != [3, 4] or int(groups[1]) <= int(groups[0]):
        return False
    ranged = _QUANTITY_AFTER.match(text, end) or (
        text.startswith(":", end) and _labels_ranges(text)
    )
    return bool(ranged) and not _has_context(_PHONE_CONTEXT, text, start, end)


@functools.lru_cache(maxsize=1)
def _labels_ranges(text: str) -> bool:
    """Whether `text` labels two ranges or more: once a text, not once a candidate (a page of
    3,000 "512-4821: ..." lines read itself 3,000 times, 7 s at 98 kB)."""
    return len(_RANGE_LABEL.findall(text)) >= 2


def _looks_like_count(groups: list[str], sep: str | None) -> bool:
    """00 01 02 03 04: space-separated pairs of digits, each one more than the last, as version
    and track lists and calendar rows are written; the trunk 0 of the first made them French
    phone numbers."""
    return (
        sep == " "
        and len(groups) >= 3
        and all(len(g) == 2 for g in groups)
        and all(int(b) == int(a) + 1 for a, b in itertools.pairwise(groups))
    )


def _looks_like_thousands(groups: list[str], sep: str | None) -> bool:
    """12.345.678 (a European-style amount): dot-grouped threes are numbers, not phones."""
    return sep == "." and len(groups) >= 2 and all(len(g) == 3 for g in groups[1:])


def _after_version_word(text: str, start: int, end: int) -> bool:
    """Whether a version or section word names the dotted number at text[start:end]."""
    return bool(
        _VERSION_WORD.search(text, max(0, start - 16), start)  # HeadlessChrome/: 15
        or _VERSION_AFTER.match(text, end, end + 12)
    )


def _after_currency(text: str, start: int) -> bool:
    before = text[max(0, start - 2) : start].rstrip()
    return bool(before) and unicodedata.category(before[-1]) == "Sc"


def _has_context(words: re.Pattern[str], text: str, start: int, end: int) -> bool:
    before, after = _CONTEXT_WINDOW
    return bool(
        words.search(text, max(0, start - before), start) or words.search(text, end, end + after)
    )


@dataclass
class PIIConfig:
    # PII types to redact (all by default); the others stay in the text.
    types: list[PIIType] = field(default_factory=lambda: list(PII_TYPES))
    # A document with more hits than this is rejected as `pii_density` instead of redacted:
    # Dolma (Soldaini et al., 2024) masks PII in documents with at most 5 spans and removes
    # the rest, as such pages are mostly directories, contact lists and leaked dumps.
    max_hits: int = 5

    def __post_init__(self) -> None:
        if not self.types:
            raise ConfigError(
                "filter.pii.types must name at least one type (or leave out the pii step)"
            )
        unknown = sorted(set(self.types) - set(PII_TYPES))
        if unknown:
            raise ConfigError(
                f"filter.pii.types: unknown type(s) {unknown}, known: {list(PII_TYPES)}"
            )
        if self.max_hits < 0:
            raise ConfigError(f"filter.pii.max_hits must be >= 0, got {self.max_hits}")


class PIIFilter(DocumentFilter):
    """Redacts PII in place, records `pii_count`, rejects PII-dense documents."""

    name = "pii"
    adds = {"pii_count": pa.int32()}

    def __init__(self, config: PIIConfig | None = None) -> None:
        self.config = config or PIIConfig()
        self.kinds = tuple(kind for kind in PII_TYPES if kind in self.config.types)

    def filter(self, doc: Document) -> str | None:
        # Rejected rows are written out too, so they are redacted as well.
        doc["text"], counts = redact(doc["text"], self.kinds)
        doc["pii_count"] = sum(counts.values())
        for kind, n in counts.items():
            self.count(f"pii:{kind}", n)
        return "pii_density" if doc["pii_count"] > self.config.max_hits else None
