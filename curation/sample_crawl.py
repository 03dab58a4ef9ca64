"""`refinery sample-crawl`: a small, deterministic, Common-Crawl-like set of .warc.gz files.

Unit and integration tests need WARCs that exercise every curation stage without network
access or third-party data, so this module invents a crawl: English articles wrapped in
boilerplate (a fifth of them on encyclopedia, forum, code, science, fiction and shop sites,
most on hosts the domain rules know: see GENRE_SITES), exact and near duplicates, spam, short
and listy pages, pages in six other languages and legacy charsets, pages full of PII, pages on
blocklisted hosts (see `conf/blocklist/`), non-HTML responses, redirects, 404s, revisits, and a
few broken records.

    refinery sample-crawl --out DIR [--docs 300] [--seed 0] [--files 4]

writes `DIR/CC-SAMPLE-<seed>-0000N.warc.gz` (one gzip member per record, as Common Crawl),
`DIR/expected.json` and `DIR/reference_articles.jsonl` (clean articles: the demo's positives
for the quality classifier). The same seed gives the same bytes: dates and record ids come from
the seed, gzip members carry mtime 0. Every fetched page (`--docs` of them) is a request,
a response (or revisit) and a metadata record; each file starts with a warcinfo record.
The last fetch of the last file is cut in the middle of its response's gzip member.
Note: warcio 1.8's `br` decoder expects brotlipy; with `brotli` >= 1.2 content_stream()
raises AttributeError on br bodies unless a shim is registered (see tests/test_sample_crawl.py).

expected.json (version 1)::

    {"version": 1, "seed": 0, "docs": 300,
     "kinds": {"article": 170, ...},                   # fetches per kind
     "files": [{"file": "CC-SAMPLE-0-00000.warc.gz", "size": 123456,
                "records": [RECORD, ...]}]}

    RECORD, every record:
      offset, length   byte range of the record's gzip member in the file
      warc_type        warcinfo | request | response | revisit | metadata
      record_id        "<urn:uuid:...>"
      url              WARC-Target-URI exactly as written (null for warcinfo)
      kind             the fetch's kind, the same on its request/response/metadata records:
                       article, duplicate, near_duplicate, spam, short, listy, foreign:<lang>,
                       pii, blocklisted:<category>, non_html, redirect, not_found, revisit,
                       broken:http_header | broken:bad_chunked | broken:truncated_gzip,
                       and "warcinfo" for warcinfo records
    RECORD, response and revisit records also have:
      host             lower-cased host of the url
      status           HTTP status code (null when the header block is garbage)
      mime             media type sent in Content-Type (null when not sent)
      charset          codec the body is really encoded in (Python name), null if not text
      charset_source   where the charset is declared: header+meta, header, meta, http-equiv,
                       none, or conflict (header and meta disagree; the header is right)
      encodings        Content-Encoding then Transfer-Encoding, e.g. ["gzip", "chunked"]
    and, where they apply:
      lang             ISO 639-1 code of the text (HTML pages)
      title, snippet   the page title and the main text's first sentence (plain text,
                       before HTML escaping), to check decoding and extraction
      words            word count of the main text (articles and their copies)
      topic            article topic
      genre            the kind of site an article is written for (curation/genres.py)
      group            shared by an article and its exact/near duplicates ("dup-0007")
      duplicate_of     url of the article a duplicate or near duplicate copies
      shingle_jaccard  word-5-gram Jaccard similarity of a near duplicate to its original
      pii              [{"type": "email", "value": "..."}, ...]
      blocklist        {"category": "gambling", "match": "domain" | "subdomain" | "url"}
      variant          non_html flavour: png, jpeg, robots, pdf or json
      location         redirect target
      refers_to        revisit: {"url": ..., "record_id": ..., "date": ...}
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import html
import io
import json
import random
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote, urlsplit

import brotli
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import GzippingWrapper, WARCWriter

from curation import genres, textgen
from curation.textgen import FIRST_NAMES, LAST_NAMES, Article, Language, word_list
from refinery.cli import named_folder, non_negative_int

MANIFEST_NAME = "expected.json"
REFERENCE_NAME = "reference_articles.jsonl"
REFERENCE_TOPICS = ("science", "history", "technology", "health")
REFERENCE_GENRES = ("encyclopedic", "science")
MANIFEST_VERSION = 1
USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"

# ----------------------------------------------------------------------------- hosts

# Invented hosts on reserved TLDs only (RFC 2606), so no generated URL points at a real site.
TLDS = ["example", "test", "example", "invalid"]
HOST_FIRST = word_list(
    "daily green open little north bright silver quiet urban wild blue happy modern"
)
HOST_SECOND = word_list("harvest journal notes kitchen trail lab digest post times review corner")
SERVERS = ["nginx/1.24.0", "Apache/2.4.58 (Ubuntu)", "cloudflare", "Microsoft-IIS/10.0"]
DOC_NETS = ["192.0.2", "198.51.100", "203.0.113"]  # RFC 5737 documentation ranges

# UT1-style blocklist, mirrored in conf/blocklist/<category>/{domains,urls} (a test checks).
BLOCKLIST = {
    "adult": {
        "domains": ["hot-singles-live.example", "xxx-video-tube.test", "adult-cams-now.example"],
        "urls": ["free-pics-host.example/gallery/nsfw", "pics-share.test/u/hotcontent"],
    },
    "gambling": {
        "domains": ["hot-casino-wins.example", "lucky-spin-slots.test", "bet-big-today.example"],
        "urls": ["sports-news-daily.example/promo/betting-bonus"],
    },
    "malware": {
        "domains": [
            "free-codec-download.example",
            "win-cleaner-pro.test",
            "update-flash-player.invalid",
        ],
        "urls": ["file-mirror.example/dl/crack-setup.exe"],
    },
    "phishing": {
        "domains": [
            "secure-login-verify.example",
            "paypa1-account-check.test",
            "bank-alert-update.example",
        ],
        "urls": ["docs-share-host.example/u/verify-account"],
    },
}
SUBDOMAINS = ["www", "m", "cdn", "login"]

FOREIGN_HOSTS = {
    "de": ["tagesblatt.example", "www.reise-notizen.test", "kochen-zuhause.example"],
    "fr": ["journal-du-matin.example", "www.cuisine-facile.test"],
    "es": ["diario-del-sur.example", "www.recetas-caseras.test"],
    "ru": ["novosti-goroda.example", "www.recepty-doma.test"],
    "ja": ["machi-news.example", "www.ryori-nikki.test"],
    "zh": ["chengshi-xinwen.example", "www.jiachang-cai.test"],
}
# Charsets each language is served in (the legacy ones are what CC still sees).
FOREIGN_CHARSETS = {
    "de": ["utf-8", "windows-1252"],
    "fr": ["utf-8", "iso-8859-1"],
    "es": ["utf-8", "windows-1252"],
    "ru": ["utf-8", "windows-1251"],
    "ja": ["utf-8", "shift_jis"],
    "zh": ["utf-8", "gb2312", "gbk"],
}
CHARSET_LABELS = {
    "utf-8": "UTF-8",
    "windows-1252": "windows-1252",
    "iso-8859-1": "ISO-8859-1",
    "windows-1251": "windows-1251",
    "shift_jis": "Shift_JIS",
    "gb2312": "GB2312",
    "gbk": "GBK",
}
SPAM_HOSTS = ["best-deals-4u.example", "cheap-stuff-online.test", "top-offers-now.example"]
LISTY_HOSTS = ["links-directory.example", "www.web-index-pages.test"]

# Sites that write one genre of curation/genres.py each: host + path template ({title},
# {slug}, {n}). A ruled site's URLs match conf/domain_rules.yaml through a host prefix or a path
# rule (so hosts stay invented); an unruled one's match no rule, and only the classify stage's
# classifier can label its pages. The slug ends the path: a title word such as "daily" followed
# by a slash would match the news rule.
GENRE_SITES: dict[str, dict[str, list[str]]] = {
    "encyclopedic": {
        "ruled": [
            "open-lexicon.example/wiki/{title}",
            "civic-almanac.test/wiki/{title}",
            "wiki.heritage-atlas.invalid/wiki/{title}",
        ],
        "unruled": ["world-compendium.example/entry/{slug}", "free-reference.test/topics/{slug}"],
    },
    "forum": {
        "ruled": [
            "forum.garden-talk.example/t/{n}/{slug}",
            "bike-owners.test/threads/{n}/{slug}",
            "forums.home-cooks.invalid/t/{n}/{slug}",
        ],
        "unruled": ["fixit-corner.example/t/{n}/{slug}", "hobby-circle.test/discussion/{n}/{slug}"],
    },
    "code": {
        "ruled": [
            "docs.quickparse.example/en/latest/{slug}.html",
            "api.tinyweb.test/reference/{slug}",
            "developer.sensorkit.invalid/guides/{slug}",
        ],
        "unruled": [
            "pyutils-handbook.example/manual/{slug}.html",
            "rustic-lib.test/book/{slug}.html",
        ],
    },
    "science": {
        "ruled": [
            "preprint-hub.example/abs/{n}",
            "open-bio-letters.test/doi/10.5555/{n}",
            "lab-meetings.invalid/proceedings/{n}/{slug}",
        ],
        "unruled": [
            "field-studies.example/paper/{n}/{slug}",
            "research-notes.test/article/{n}/{slug}",
        ],
    },
    "books": {
        "ruled": [
            "storyshelf.example/novels/{n}/{slug}",
            "free-fiction.test/stories/{n}/{slug}",
            "serial-tales.invalid/chapters/{n}/{slug}",
        ],
        "unruled": ["bookworm-reads.example/read/{n}/{slug}", "paper-lanterns.test/text/{slug}"],
    },
    "commerce": {
        "ruled": [
            "shop.kitchen-goods.example/p/{n}/{slug}",
            "gadget-outlet.test/product/{slug}-{n}",
            "store.craft-corner.invalid/p/{n}/{slug}",
        ],
        "unruled": ["homeware-depot.example/item/{slug}-{n}", "music-gear-hub.test/buy/{n}/{slug}"],
    },
}


@dataclass(frozen=True)
class Site:
    """A web site: its host (as it appears in URLs), look and server."""

    host: str
    name: str
    skin: str
    server: str
    ip: str
    scheme: str = "https"


def make_site(rng: random.Random, host: str) -> Site:
    bare = host.removeprefix("www.").split(".")[0]
    name = " ".join(part.capitalize() for part in bare.split("-"))
    ip = f"{rng.choice(DOC_NETS)}.{rng.randint(1, 254)}"
    return Site(
        host,
        name,
        rng.choice(list(SKINS)),
        rng.choice(SERVERS),
        ip,
        rng.choice(["https", "https", "http"]),
    )


def english_sites(rng: random.Random, count: int) -> list[Site]:
    """`count` distinct hosts such as www.golden-ledger.example or quietlab.test."""
    # The word pairs give a few hundred distinct names; past that (crawls of several thousand
    # docs) hosts are numbered, so the loop always ends.
    word_names = len(
        {f"{a}{j}{b}.{t}" for a in HOST_FIRST for b in HOST_SECOND for j in ("-", "") for t in TLDS}
    )
    hosts: list[str] = []
    bare_hosts: set[str] = set()
    while len(hosts) < count:
        first, second = rng.choice(HOST_FIRST), rng.choice(HOST_SECOND)
        joiner = rng.choice(["-", ""])
        number = str(len(hosts)) if len(bare_hosts) >= word_names else ""
        host = f"{first}{joiner}{second}{number}.{rng.choice(TLDS)}"
        if rng.random() < 0.4:
            host = "www." + host
        if host.removeprefix("www.") not in bare_hosts:
            bare_hosts.add(host.removeprefix("www."))
            hosts.append(host)
    return [make_site(rng, host) for host in hosts]


# ----------------------------------------------------------------------------- pages


@dataclass
class Page:
    """One fetched URL: what the server sent (before content/transfer encoding) and the
    ground truth the manifest records about it."""

    kind: str
    url: str
    site: Site
    status: int = 200
    mime: str | None = "text/html"
    body: bytes = b""
    charset: str | None = None
    charset_source: str | None = None
    encodings: tuple[str, ...] = ()
    extra_headers: list[tuple[str, str]] = field(default_factory=list)  # e.g. Location
    info: dict[str, Any] = field(default_factory=dict)
    article: Article | None = None  # kept so duplicates can copy it
    refers_to: Page | None = None  # revisits: the earlier response
    # Filled in when the response is written, for revisits that point back at it.
    record_id: str = ""
    warc_date: str = ""
    payload_digest: str = ""


REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found"}

# ----------------------------------------------------------------------------- HTML

SKINS = {
    "blog": Template("""<!DOCTYPE html>
<html lang="$lang">
<head>
$charset_meta<title>$title | $site_name</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/wp-content/themes/simple/style.css">
<script>var _paq = window._paq = window._paq || []; _paq.push(['trackPageView']);</script>
</head>
<body class="single-post">
$cookie
<header id="masthead"><a class="site-title" href="/">$site_name</a>
$nav
</header>
<div id="content"><main id="primary">
<article class="post"><h1 class="entry-title">$title</h1>
<div class="entry-meta">Posted on $date by $author</div>
<div class="entry-content">
$main
</div></article>
$comments
</main>
$sidebar
</div>
$footer
<script src="/wp-includes/js/jquery.min.js"></script>
</body>
</html>
"""),
    "news": Template("""<!DOCTYPE html>
<html lang="$lang"><head>$charset_meta
<title>$title - $site_name</title>
<meta property="og:title" content="$title">
<script async src="/ads/loader.js"></script>
</head><body>
<div class="topbar"><span class="ticker">Breaking: markets open higher</span>
<a href="/login">Sign in</a> <a href="/subscribe">Subscribe</a></div>
$nav
$cookie
<div class="layout"><div class="story">
<nav class="breadcrumb"><a href="/">$site_name</a> &rsaquo; <a href="/latest">Latest</a></nav>
<h1>$title</h1><p class="byline">By $author &middot; $date</p>
<div class="story-body">
$main
</div>
<div class="share">Share this story:
<a href="#">Facebook</a> <a href="#">X</a> <a href="#">Email</a></div>
$comments
</div>
$sidebar
</div>
$footer
</body></html>
"""),
    "magazine": Template("""<!doctype html>
<html lang="$lang">
<head>
$charset_meta<title>$site_name: $title</title>
<style>body{font-family:Georgia,serif}.popup{display:none}</style>
</head>
<body>
<div class="wrapper">
<div class="header"><div class="logo">$site_name</div>$nav</div>
<div class="popup newsletter">Join 20,000 readers. Get the best stories in your inbox every week.
<button>Sign up</button></div>
<div class="main-col">
<div class="headline"><h1>$title</h1></div>
<div class="meta">$date &middot; $author</div>
<div class="text">
$main
</div>
<div class="tags">Tags:
<a href="/tag/news">news</a>, <a href="/tag/life">life</a>, <a href="/tag/ideas">ideas</a></div>
$comments
</div>
$sidebar
$footer
$cookie
</div>
</body>
</html>
"""),
}

NAV_EN = ["Home", "News", "Science", "Travel", "Food", "Sport", "Tech", "Health", "About"]
COOKIE_EN = (
    "We use cookies to improve your experience and to show you relevant ads. "
    "By continuing to browse this site you agree to our cookie policy."
)
SIDEBAR_LINKS = [
    "Ten tips for a better morning routine",
    "The best walking routes this autumn",
    "Our editors pick the books of the year",
    "Five easy dinners for busy weeknights",
    "What the new rules mean for renters",
    "A beginner's guide to saving money",
    "Photos: the week in pictures",
    "Inside the city's oldest market",
    "How to choose a reliable laptop",
    "Why sleep matters more than you think",
]
COMMENTS = [
    "Great article, thanks for sharing!",
    "I tried this last weekend and it worked for me.",
    "Does anyone know where to find more about this?",
    "Interesting read. I disagree with the second part though.",
    "Bookmarked for later, very helpful.",
    "This is exactly what I was looking for.",
    "My grandmother used to say the same thing.",
    "Well written and easy to follow.",
]
FOOTER_LINKS = ["About us", "Privacy policy", "Terms of use", "Advertise", "Careers", "Contact"]


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def link_list(labels: list[str], css: str) -> str:
    items = "".join(
        f'<li><a href="/{label.lower().replace(" ", "-")}">{escape(label)}</a></li>'
        for label in labels
    )
    return f'<ul class="{css}">{items}</ul>'


def charset_meta(source: str | None, label: str | None, decoy: str | None) -> str:
    """The <meta> tag a page carries for its charset declaration style."""
    if source in ("meta", "header+meta"):
        return f'<meta charset="{label}">\n'
    if source == "http-equiv":
        return f'<meta http-equiv="Content-Type" content="text/html; charset={label}">\n'
    if source == "conflict":
        return f'<meta charset="{decoy}">\n'
    return ""


def boilerplate(rng: random.Random, site: Site, language: Language | None) -> dict[str, str]:
    """Menus, cookie banner, sidebar, comments and footer: what extraction must remove."""
    year = 2025
    if language is not None:
        *nav, cookie = language.nav
        return {
            "nav": link_list(nav, "menu"),
            "cookie": f'<div class="cookie-banner">{escape(cookie)} <button>OK</button></div>',
            "sidebar": "",
            "comments": "",
            "footer": f"<footer>{link_list(nav, 'footer')}<p>© {year} {site.name}</p></footer>",
        }
    comments = "".join(
        f'<div class="comment"><span class="author">{rng.choice(FIRST_NAMES).title()}'
        f"</span><p>{escape(text)}</p></div>"
        for text in rng.sample(COMMENTS, rng.randint(0, 4))
    )
    return {
        "nav": f'<nav class="main-nav">{link_list(rng.sample(NAV_EN, 6), "menu")}</nav>',
        "cookie": f'<div id="cookie-notice" class="cookie-consent"><p>{COOKIE_EN}</p>'
        "<button>Accept all</button><button>Manage preferences</button></div>",
        "sidebar": '<aside class="sidebar"><h3>Popular posts</h3>'
        + link_list(rng.sample(SIDEBAR_LINKS, 5), "popular")
        + '<div class="newsletter">Subscribe to our newsletter and never miss a story.</div>'
        + "</aside>",
        "comments": f'<section class="comments"><h3>Comments</h3>{comments}</section>'
        if comments
        else "",
        "footer": f'<footer class="site-footer">{link_list(FOOTER_LINKS, "footer-links")}'
        f"<p>© {year} {site.name}. All rights reserved.</p></footer>",
    }


def paragraphs_html(paragraphs: list[str], headings: dict[int, str] | None = None) -> str:
    parts = []
    for i, text in enumerate(paragraphs):
        if headings and i in headings:
            parts.append(f"<h2>{escape(headings[i])}</h2>")
        parts.append(f"<p>{escape(text)}</p>")
    return "\n".join(parts)


def render_html(
    rng: random.Random,
    site: Site,
    title: str,
    main: str,
    *,
    language: Language | None = None,
    meta: str = "",
) -> str:
    return SKINS[site.skin].substitute(
        lang=language.code if language else "en",
        charset_meta=meta,
        title=escape(title),
        site_name=escape(site.name),
        date=f"{rng.randint(1, 28)} March 2025",
        author=f"{rng.choice(FIRST_NAMES).title()} {rng.choice(LAST_NAMES).title()}",
        main=main,
        **boilerplate(rng, site, language),
    )


# ----------------------------------------------------------------------------- non-HTML bodies


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A valid, tiny RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xc8\x78\x28" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# An 8x8 orange baseline JPEG (made once with Pillow), so no image library is needed.
JPEG_BYTES = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300100b0c0e0c0a100e0d0e1211101318281a18"
    "1616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c"
    "656763ffdb0043011112121815182f1a1a2f634238426363636363636363636363636363636363636363"
    "636363636363636363636363636363636363636363636363636363ffc0001108000800080301220002110103"
    "1101ffc4001500010100000000000000000000000000000003ffc40014100100000000000000000000000000"
    "000000ffc40014010100000000000000000000000000000005ffc4001411010000000000000000000000000000"
    "0000ffda000c03010002110311003f00a0018b3fffd9"
)


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF 1.4 with correct xref offsets."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# ----------------------------------------------------------------------------- page plan


@dataclass(frozen=True)
class Spec:
    """What to generate for one fetch; `variant` picks among the kind's flavours."""

    kind: str
    variant: str = ""
    lang: str = "en"
    charset: str = "utf-8"
    charset_source: str = "header+meta"
    encodings: tuple[str, ...] = ()
    genre: str = ""  # articles: a key of GENRE_SITES, variant "ruled" or "unruled"


def _foreign(lang: str, charset: str, source: str, *encodings: str) -> Spec:
    return Spec(f"foreign:{lang}", "", lang, charset, source, tuple(encodings))


# One of every flavour, so even the smallest crawl covers every stage and edge case.
SPECIAL_SPECS = [
    Spec("article", charset_source="header"),
    Spec("article", charset_source="meta"),
    Spec("article", charset_source="http-equiv"),
    Spec("article", charset_source="none"),
    Spec("article", encodings=("gzip",)),
    Spec("article", encodings=("deflate",)),
    Spec("article", encodings=("br",)),
    Spec("article", encodings=("chunked",)),
    Spec("article", encodings=("gzip", "chunked")),
    Spec("article", encodings=("br", "chunked")),
    Spec("article", variant="upper_host"),
    Spec("article", variant="query"),
    *[Spec("article", variant, genre=g) for g in GENRE_SITES for variant in ("ruled", "unruled")],
    _foreign("de", "windows-1252", "header"),
    _foreign("de", "utf-8", "meta", "gzip"),
    _foreign("fr", "iso-8859-1", "http-equiv"),
    _foreign("fr", "utf-8", "conflict"),
    _foreign("es", "windows-1252", "conflict", "br"),
    _foreign("es", "utf-8", "none"),
    _foreign("ru", "windows-1251", "none"),
    _foreign("ru", "utf-8", "header", "chunked"),
    _foreign("ja", "shift_jis", "meta"),
    _foreign("ja", "utf-8", "header+meta", "gzip"),
    _foreign("zh", "gb2312", "http-equiv"),
    _foreign("zh", "gbk", "header", "deflate"),
    Spec("pii", variant="all"),
    Spec("pii", encodings=("gzip",)),
    Spec("spam"),
    Spec("spam", encodings=("gzip",)),
    Spec("short"),
    Spec("short", charset_source="none"),
    Spec("listy", variant="link_farm"),
    Spec("listy", variant="lines"),
    Spec("blocklisted:adult", variant="domain"),
    Spec("blocklisted:adult", variant="url"),
    Spec("blocklisted:gambling", variant="domain"),
    Spec("blocklisted:gambling", variant="subdomain"),
    Spec("blocklisted:malware", variant="subdomain"),
    Spec("blocklisted:malware", variant="url"),
    Spec("blocklisted:phishing", variant="domain"),
    Spec("blocklisted:phishing", variant="url"),
    Spec("non_html", variant="png"),
    Spec("non_html", variant="jpeg"),
    Spec("non_html", variant="robots"),
    Spec("non_html", variant="pdf"),
    Spec("non_html", variant="json", encodings=("gzip",)),
    Spec("redirect", variant="301"),
    Spec("redirect", variant="302"),
    Spec("not_found"),
    Spec("duplicate"),
    Spec("near_duplicate"),
    Spec("revisit"),
    Spec("revisit"),
    Spec("broken:http_header"),
    Spec("broken:bad_chunked"),
    Spec("broken:truncated_gzip"),
]
# Share of each kind among the remaining fetches; articles take what is left.
FILLER_SHARES = {
    "duplicate": 0.08,
    "near_duplicate": 0.08,
    "spam": 0.04,
    "short": 0.04,
    "listy": 0.04,
    "foreign": 0.05,
    "pii": 0.03,
    "blocklisted": 0.04,
    "genre": 0.2,
}
MIN_DOCS = len(SPECIAL_SPECS) + 10
ARTICLE_ENCODINGS = [((), 50), (("gzip",), 25), (("br",), 10), (("deflate",), 5),
                     (("chunked",), 5), (("gzip", "chunked"), 5)]  # fmt: skip


def filler_spec(rng: random.Random, kind: str) -> Spec:
    """A randomly flavoured spec of a kind, for the bulk of the crawl."""
    if kind == "article":
        encodings = rng.choices(
            [e for e, _ in ARTICLE_ENCODINGS], [w for _, w in ARTICLE_ENCODINGS]
        )[0]
        source = rng.choices(
            ["header+meta", "header", "meta", "http-equiv", "none"], [6, 2, 1, 1, 1]
        )[0]
        return Spec("article", charset_source=source, encodings=encodings)
    if kind == "foreign":
        lang = rng.choice(sorted(FOREIGN_CHARSETS))
        source = rng.choice(["header+meta", "header", "meta", "http-equiv", "none"])
        return _foreign(lang, rng.choice(FOREIGN_CHARSETS[lang]), source)
    if kind == "blocklisted":
        category = rng.choice(sorted(BLOCKLIST))
        return Spec(f"blocklisted:{category}", variant=rng.choice(["domain", "subdomain", "url"]))
    if kind == "genre":
        variant = rng.choice(["ruled", "ruled", "unruled"])
        return Spec("article", variant, genre=rng.choice(sorted(GENRE_SITES)))
    if kind == "listy":
        return Spec("listy", variant=rng.choice(["link_farm", "lines"]))
    return Spec(kind)


def plan_specs(rng: random.Random, docs: int) -> list[Spec]:
    """Every special spec plus filler up to `docs`, in crawl order.

    Revisits go last but one (they point back at earlier responses) and the truncated
    record last of all (it must end the last file).
    """
    if docs < MIN_DOCS:
        raise ValueError(f"docs must be at least {MIN_DOCS} so every page kind appears")
    filler = docs - len(SPECIAL_SPECS)
    counts = {kind: round(share * filler) for kind, share in FILLER_SHARES.items()}
    counts["article"] = filler - sum(counts.values())
    specs = list(SPECIAL_SPECS)
    for kind, count in counts.items():
        specs += [filler_spec(rng, kind) for _ in range(count)]
    tail_kinds = ("revisit", "broken:truncated_gzip")
    body = [s for s in specs if s.kind not in tail_kinds]
    rng.shuffle(body)
    return body + [s for s in specs if s.kind == "revisit"] + [SPECIAL_SPECS[-1]]


# ----------------------------------------------------------------------------- rendering


def slug(title: str) -> str:
    return "-".join("".join(c for c in word if c.isalnum()) for word in title.lower().split())


class PageFactory:
    """Turns specs into pages, remembering articles so duplicates and revisits can copy them."""

    def __init__(self, rng: random.Random, docs: int):
        self.rng = rng
        self.sites = english_sites(rng, max(8, docs // 8))
        self.sources: list[Page] = []  # plain articles that copies may point at
        self.used_urls: set[str] = set()
        self.other_sites: dict[str, Site] = {}
        self.groups = 0

    def site(self, host: str) -> Site:
        """The site behind a fixed host (foreign, spam, blocklisted): one look per host."""
        if host not in self.other_sites:
            self.other_sites[host] = make_site(self.rng, host)
        return self.other_sites[host]

    def url(self, site: Site, path: str) -> str:
        base = f"{site.scheme}://{site.host}{quote(path, safe='/?&=')}"
        url, n = base, 1
        while url in self.used_urls:  # every fetch has its own URL, except revisits
            n += 1
            url = f"{base}{'&' if '?' in base else '?'}p={n}"
        self.used_urls.add(url)
        return url

    def article_path(self, site: Site, title: str, query: bool = False) -> str:
        rng = self.rng
        if query or site.skin == "magazine":
            ref = rng.choice(["home", "rss", "feed"])
            return f"/article.php?id={rng.randint(1000, 99999)}&ref={ref}"
        if site.skin == "blog":
            return f"/{rng.randint(2015, 2025)}/{rng.randint(1, 12):02d}/{slug(title)}/"
        section = rng.choice(["world", "life", "culture", "local"])
        return f"/{section}/{slug(title)}-{rng.randint(10**5, 10**6)}.html"

    def html_page(
        self,
        spec: Spec,
        site: Site,
        url: str,
        title: str,
        main: str,
        *,
        language: Language | None = None,
        decoy: str | None = None,
    ) -> Page:
        label = CHARSET_LABELS[spec.charset]
        meta = charset_meta(spec.charset_source, label, decoy)
        text = render_html(self.rng, site, title, main, language=language, meta=meta)
        return Page(
            spec.kind,
            url,
            site,
            body=text.encode(spec.charset, errors="xmlcharrefreplace"),
            charset=spec.charset,
            charset_source=spec.charset_source,
            encodings=spec.encodings,
            info={"lang": spec.lang, "title": title},
        )

    def make(self, spec: Spec) -> Page:
        family = spec.kind.split(":")[0]
        return getattr(self, f"make_{family}")(spec)

    def article_page(
        self, spec: Spec, site: Site, article: Article, *, query: bool = False, path: str = ""
    ) -> Page:
        url = self.url(site, path or self.article_path(site, article.title, query))
        main = paragraphs_html(article.paragraphs, article.headings)
        page = self.html_page(spec, site, url, article.title, main)
        page.article = article
        page.info.update(snippet=article.first_sentence, words=article.words, topic=article.topic)
        return page

    def make_article(self, spec: Spec) -> Page:
        if spec.genre:
            return self.genre_page(spec)
        site = self.rng.choice(self.sites)
        page = self.article_page(
            spec, site, textgen.write_article(self.rng), query=spec.variant == "query"
        )
        if spec.variant == "upper_host":
            # Same site, host spelt in capitals: URL normalisation must fold it.
            page.url = page.url.replace(site.host, site.host.upper(), 1)
        else:
            self.sources.append(page)
        return page

    def genre_page(self, spec: Spec) -> Page:
        host, _, template = self.rng.choice(GENRE_SITES[spec.genre][spec.variant]).partition("/")
        article = genres.write_genre_article(self.rng, spec.genre)
        title = article.title.replace(" ", "_")
        path = "/" + template.format(
            title=title, slug=slug(article.title), n=self.rng.randint(100, 99999)
        )
        page = self.article_page(spec, self.site(host), article, path=path)
        page.info["genre"] = spec.genre
        self.sources.append(page)
        return page

    def copy_of(self, spec: Spec, article: Article, original: Page) -> Page:
        # A copy goes to a site of the same look: extraction keeps the title on some skins and
        # not others, which would turn an exact copy's text into a near duplicate.
        others = [s for s in self.sites if s.host != original.site.host]
        same_look = [s for s in others if s.skin == original.site.skin]
        page = self.article_page(spec, self.rng.choice(same_look or others), article)
        if "group" not in original.info:
            self.groups += 1
            original.info["group"] = f"dup-{self.groups:04d}"
        page.info.update(group=original.info["group"], duplicate_of=original.url)
        return page

    def make_duplicate(self, spec: Spec) -> Page:
        original = self.rng.choice(self.sources)
        return self.copy_of(spec, original.article, original)

    def make_near_duplicate(self, spec: Spec) -> Page:
        original = self.rng.choice(self.sources)
        article, similarity = textgen.near_duplicate(original.article, self.rng)
        page = self.copy_of(spec, article, original)
        page.info["shingle_jaccard"] = round(similarity, 4)
        return page

    def make_foreign(self, spec: Spec) -> Page:
        language = textgen.LANGUAGES[spec.lang]
        site = self.site(self.rng.choice(FOREIGN_HOSTS[spec.lang]))
        title, paragraphs = textgen.foreign_text(self.rng, language)
        url = self.url(site, f"/{slug(title) or 'seite'}-{self.rng.randint(100, 999)}.html")
        decoy = "UTF-8" if spec.charset != "utf-8" else "ISO-8859-1"
        page = self.html_page(
            spec, site, url, title, paragraphs_html(paragraphs), language=language, decoy=decoy
        )
        first = paragraphs[0].split("。" if language.separator == "" else ". ")[0]
        page.info["snippet"] = first
        return page

    def make_pii(self, spec: Spec) -> Page:
        values = textgen.pii_values(self.rng)
        if spec.variant != "all":
            keep = sorted(self.rng.sample(sorted(values), self.rng.randint(2, 4)))
            values = {k: values[k] for k in keep}
        article = textgen.write_article(self.rng, length=self.rng.randint(150, 350))
        sentences = textgen.pii_sentences(values)
        article.paragraphs.insert(1, " ".join(sentences))
        page = self.article_page(spec, self.rng.choice(self.sites), article)
        page.info["pii"] = [{"type": k, "value": v} for k, v in values.items()]
        return page

    def simple_page(self, spec: Spec, host: str, path: str, title: str, main: str) -> Page:
        site = self.site(host)
        return self.html_page(spec, site, self.url(site, path), title, main)

    def make_spam(self, spec: Spec) -> Page:
        title, paragraphs = textgen.keyword_spam(self.rng)
        host = self.rng.choice(SPAM_HOSTS)
        page = self.simple_page(
            spec, host, f"/{slug(title)}.html", title, paragraphs_html(paragraphs)
        )
        page.info["snippet"] = paragraphs[0][:60].rsplit(" ", 1)[0]
        return page

    def make_short(self, spec: Spec) -> Page:
        site = self.rng.choice(self.sites)
        text = textgen.short_text(self.rng)
        path = self.rng.choice(["/coming-soon", "/account/login", "/thanks", "/beta/"])
        page = self.html_page(spec, site, self.url(site, path), site.name, f"<p>{escape(text)}</p>")
        page.info["snippet"] = text
        return page

    def make_listy(self, spec: Spec) -> Page:
        items = textgen.list_items(self.rng)
        if spec.variant == "link_farm":
            links = "".join(
                f'<li><a href="http://{slug(item)}.example/">{escape(item)}</a></li>'
                for item in items
            )
            main = f'<ul class="links">{links}</ul>'
        else:
            main = '<div class="tags">' + "<br>\n".join(escape(item) for item in items) + "</div>"
        host = self.rng.choice(LISTY_HOSTS)
        page = self.simple_page(
            spec, host, f"/{spec.variant}/{self.rng.randint(1, 500)}", "Useful links", main
        )
        page.info["snippet"] = items[0]
        return page

    def make_blocklisted(self, spec: Spec) -> Page:
        category = spec.kind.split(":")[1]
        entries = BLOCKLIST[category]
        if spec.variant == "url":
            host, _, path = self.rng.choice(entries["urls"]).partition("/")
            path = "/" + path
        else:
            host = self.rng.choice(entries["domains"])
            if spec.variant == "subdomain":
                host = f"{self.rng.choice(SUBDOMAINS)}.{host}"
            path = f"/{category}/{self.rng.randint(1, 999)}.html"
        article = textgen.write_article(self.rng, length=self.rng.randint(150, 300))
        site = self.site(host)
        page = self.html_page(
            spec, site, self.url(site, path), article.title, paragraphs_html(article.paragraphs)
        )
        page.info.update(
            snippet=article.first_sentence, blocklist={"category": category, "match": spec.variant}
        )
        return page

    def make_non_html(self, spec: Spec) -> Page:
        site = self.rng.choice(self.sites)
        n = self.rng.randint(1, 999)
        bodies = {
            "png": (f"/images/photo-{n}.png", "image/png", png_bytes(), None),
            "jpeg": (f"/uploads/thumb-{n}.jpg", "image/jpeg", JPEG_BYTES, None),
            "robots": (
                "/robots.txt",
                "text/plain",
                f"User-agent: *\nDisallow: /admin/\nDisallow: /search\n"
                f"Sitemap: {site.scheme}://{site.host}/sitemap.xml\n".encode(),
                "utf-8",
            ),
            "pdf": (f"/files/report-{n}.pdf", "application/pdf", pdf_bytes("Annual report"), None),
            "json": (
                f"/api/v1/items?page={n}",
                "application/json",
                json.dumps(
                    {"page": n, "items": [{"id": i, "name": f"item {i}"} for i in range(5)]}
                ).encode(),
                "utf-8",
            ),
        }
        path, mime, body, charset = bodies[spec.variant]
        return Page(
            spec.kind,
            self.url(site, path),
            site,
            mime=mime,
            body=body,
            charset=charset,
            charset_source="header" if charset else None,
            encodings=spec.encodings,
            info={"variant": spec.variant},
        )

    def make_redirect(self, spec: Spec) -> Page:
        site = self.rng.choice(self.sites)
        status = int(spec.variant)
        location = f"{site.scheme}://{site.host}/new/{self.rng.randint(1, 9999)}"
        url = self.url(site, f"/old/{self.rng.randint(1, 9999)}")
        body = (
            b""
            if status == 301
            else f'<html><body>Moved <a href="{location}">here</a>.</body></html>'.encode()
        )
        return Page(
            spec.kind,
            url,
            site,
            status=status,
            mime=None if status == 301 else "text/html",
            body=body,
            charset=None if status == 301 else "utf-8",
            charset_source=None if status == 301 else "none",
            extra_headers=[("Location", location)],
            info={"location": location},
        )

    def make_not_found(self, spec: Spec) -> Page:
        site = self.rng.choice(self.sites)
        url = self.url(site, f"/missing/{self.rng.randint(1, 9999)}.html")
        text = "Sorry, the page you are looking for does not exist or has been moved."
        page = self.html_page(spec, site, url, "Page not found", f"<p>{text}</p>")
        page.status = 404
        page.info["snippet"] = text
        return page

    def make_revisit(self, spec: Spec) -> Page:
        original = self.rng.choice(self.sources)
        return Page(spec.kind, original.url, original.site, mime=original.mime, refers_to=original)

    def make_broken(self, spec: Spec) -> Page:
        encodings = ("chunked",) if spec.kind == "broken:bad_chunked" else ()
        page = self.article_page(
            Spec(spec.kind, encodings=encodings),
            self.rng.choice(self.sites),
            textgen.write_article(self.rng),
        )
        if spec.kind == "broken:http_header":
            page.status, page.mime, page.charset, page.charset_source = 0, None, None, None
        return page


def build_pages(rng: random.Random, docs: int) -> list[Page]:
    """Pages in crawl order; copies are rendered after the articles they copy."""
    specs = plan_specs(rng, docs)
    factory = PageFactory(rng, docs)
    pages: list[Page | None] = [None] * len(specs)
    copies = ("duplicate", "near_duplicate", "revisit")
    for render_copies in (False, True):
        for i, spec in enumerate(specs):
            if (spec.kind in copies) == render_copies:
                pages[i] = factory.make(spec)
    return [p for p in pages if p is not None]


# ----------------------------------------------------------------------------- HTTP


def chunked(data: bytes, rng: random.Random) -> bytes:
    out = bytearray()
    for start, size in _chunk_bounds(len(data), rng):
        out += b"%x\r\n%s\r\n" % (size, data[start : start + size])
    return bytes(out + b"0\r\n\r\n")


def badly_chunked(data: bytes) -> bytes:
    """1000-byte chunks that each claim 17 bytes more, and no final zero-length chunk."""
    out = bytearray()
    for start in range(0, len(data), 1000):
        chunk = data[start : start + 1000]
        out += b"%x\r\n%s\r\n" % (len(chunk) + 17, chunk)
    return bytes(out)


def _chunk_bounds(length: int, rng: random.Random) -> list[tuple[int, int]]:
    bounds, start = [], 0
    while start < length:
        size = min(length - start, rng.randint(256, 4096))
        bounds.append((start, size))
        start += size
    return bounds


def content_encode(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, mtime=0)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        return brotli.compress(data, quality=5)
    raise ValueError(f"unknown content encoding {encoding!r}")


def http_response(page: Page, when: datetime, rng: random.Random) -> bytes:
    """Status line, headers and body as the server sent them (encoded, maybe chunked)."""
    body = page.body
    content_encodings = [e for e in page.encodings if e != "chunked"]
    for encoding in content_encodings:
        body = content_encode(body, encoding)
    headers = [("Date", format_datetime(when, usegmt=True)), ("Server", page.site.server)]
    if page.mime:
        charset = (
            page.charset if page.charset_source in ("header", "header+meta", "conflict") else None
        )
        label = f"; charset={CHARSET_LABELS[charset]}" if charset else ""
        headers.append(("Content-Type", page.mime + label))
    headers += page.extra_headers
    if content_encodings:
        headers += [("Content-Encoding", ", ".join(content_encodings)), ("Vary", "Accept-Encoding")]
    if page.kind == "broken:bad_chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = badly_chunked(body)
    elif "chunked" in page.encodings:
        headers.append(("Transfer-Encoding", "chunked"))
        body = chunked(body, rng)
    else:
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    head = f"HTTP/1.1 {page.status} {REASONS[page.status]}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + body


def garbage_http_response(page: Page) -> bytes:
    """A header block no HTTP parser accepts, followed by the page."""
    return (
        b"\x00\x9c\xff\xfeGARBAGE \x01 NOT-HTTP\r\n\xfe\xfe: \x01\x02\r\n\x80\x81\x82\r\n\r\n"
        + page.body
    )


def http_request(url: str, lang: str) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return (
        f"GET {target} HTTP/1.1\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        f"Accept-Language: {'en-US,en' if lang == 'en' else lang};q=0.5\r\n"
        f"Accept-Encoding: br,gzip\r\nHost: {parts.netloc}\r\nConnection: Keep-Alive\r\n\r\n"
    ).encode()


def sha1_digest(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


# ----------------------------------------------------------------------------- WARC writing


def warc_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class CrawlFile:
    """One .warc.gz being written in memory, with the manifest entry of every record."""

    def __init__(self, name: str, ids: random.Random):
        self.name = name
        self.ids = ids
        self.out = io.BytesIO()
        self.writer = WARCWriter(self.out, gzip=True)
        self.records: list[dict[str, Any]] = []
        self.warcinfo_id = ""

    def record_id(self) -> str:
        return f"<urn:uuid:{uuid.UUID(int=self.ids.getrandbits(128), version=4)}>"

    def _write(self, record: Any, entry: dict[str, Any]) -> None:
        offset = self.out.tell()
        self.writer.write_record(record)
        self.records.append({"offset": offset, "length": self.out.tell() - offset, **entry})

    def _headers(self, kind: str, record_id: str, when: datetime, **extra: str) -> dict[str, str]:
        return {
            "WARC-Type": kind,
            "WARC-Date": warc_date(when),
            "WARC-Record-ID": record_id,
            **extra,
        }

    def write_warcinfo(self, seed: int, when: datetime) -> None:
        self.warcinfo_id = self.record_id()
        fields = (
            f"isPartOf: CC-SAMPLE-{seed}\r\npublisher: Refinery sample-crawl (synthetic)\r\n"
            "description: Deterministic synthetic crawl for tests\r\n"
            "software: refinery sample-crawl\r\nformat: WARC File Format 1.0\r\n"
        ).encode()
        headers = self._headers("warcinfo", self.warcinfo_id, when, **{"WARC-Filename": self.name})
        record = self.writer.create_warc_record(
            "",
            "warcinfo",
            payload=io.BytesIO(fields),
            length=len(fields),
            warc_headers_dict=headers,
        )
        entry = {
            "warc_type": "warcinfo",
            "record_id": self.warcinfo_id,
            "url": None,
            "kind": "warcinfo",
        }
        self._write(record, entry)

    def write_fetch(self, page: Page, when: datetime, rng: random.Random) -> None:
        """Request, response (or revisit) and metadata records, as Common Crawl writes them."""
        request_id, response_id = self.record_id(), self.record_id()
        common = {"WARC-Warcinfo-ID": self.warcinfo_id, "WARC-IP-Address": page.site.ip}
        request = http_request(page.url, page.info.get("lang", "en"))
        self._write(
            self.writer.create_warc_record(
                page.url,
                "request",
                payload=io.BytesIO(request),
                length=len(request),
                warc_headers_dict=self._headers("request", request_id, when, **common),
            ),
            {"warc_type": "request", "record_id": request_id, "url": page.url, "kind": page.kind},
        )
        common["WARC-Concurrent-To"] = request_id
        headers = self._headers("response", response_id, when, **common)
        if page.refers_to is not None:
            self.write_revisit(page, headers, response_id)
        elif page.kind == "broken:http_header":
            self.write_raw_response(page, headers, garbage_http_response(page))
        else:
            self.write_response(page, headers, http_response(page, when, rng))
        if page.kind == "broken:truncated_gzip":
            self.truncate_last_record()
            return
        metadata_id = self.record_id()
        metadata = f"fetchTimeMs: {rng.randint(40, 2500)}\r\n".encode()
        headers = self._headers("metadata", metadata_id, when, **{"WARC-Refers-To": response_id})
        self._write(
            self.writer.create_warc_record(
                page.url,
                "metadata",
                payload=io.BytesIO(metadata),
                length=len(metadata),
                warc_content_type="application/warc-fields",
                warc_headers_dict=headers,
            ),
            {"warc_type": "metadata", "record_id": metadata_id, "url": page.url, "kind": page.kind},
        )

    def response_entry(self, page: Page, warc_type: str, record_id: str) -> dict[str, Any]:
        return {
            "warc_type": warc_type,
            "record_id": record_id,
            "url": page.url,
            "kind": page.kind,
            "host": urlsplit(page.url).hostname,
            "status": page.status or None,
            "mime": page.mime,
            "charset": page.charset,
            "charset_source": page.charset_source,
            "encodings": list(page.encodings),
            **page.info,
        }

    def write_response(self, page: Page, headers: dict[str, str], payload: bytes) -> None:
        if page.mime:
            headers["WARC-Identified-Payload-Type"] = page.mime
        record = self.writer.create_warc_record(
            page.url,
            "response",
            payload=io.BytesIO(payload),
            length=len(payload),
            warc_headers_dict=headers,
        )
        page.record_id, page.warc_date = headers["WARC-Record-ID"], headers["WARC-Date"]
        page.payload_digest = record.rec_headers.get_header("WARC-Payload-Digest")
        self._write(record, self.response_entry(page, "response", page.record_id))

    def write_raw_response(self, page: Page, headers: dict[str, str], block: bytes) -> None:
        """A response record warcio could not build: its HTTP header block is garbage."""
        headers |= {
            "WARC-Target-URI": page.url,
            "Content-Type": "application/http; msgtype=response",
            "WARC-Block-Digest": sha1_digest(block),
            "Content-Length": str(len(block)),
        }
        head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        offset = self.out.tell()
        member = GzippingWrapper(self.out)
        member.write(head.encode() + block + b"\r\n\r\n")
        member.flush()
        entry = self.response_entry(page, "response", headers["WARC-Record-ID"])
        self.records.append({"offset": offset, "length": self.out.tell() - offset, **entry})

    def write_revisit(self, page: Page, headers: dict[str, str], record_id: str) -> None:
        original = page.refers_to
        assert original is not None and original.record_id, "revisits follow their original"
        headers["WARC-Refers-To"] = original.record_id
        http_headers = StatusAndHeaders(
            "200 OK",
            [("Server", original.site.server), ("Content-Type", original.mime or "text/html")],
            protocol="HTTP/1.1",
        )
        record = self.writer.create_revisit_record(
            page.url,
            original.payload_digest,
            original.url,
            original.warc_date,
            http_headers=http_headers,
            warc_headers_dict=headers,
        )
        entry = self.response_entry(page, "revisit", record_id)
        entry.update(
            status=200,
            charset=None,
            refers_to={
                "url": original.url,
                "record_id": original.record_id,
                "date": original.warc_date,
            },
        )
        self._write(record, entry)

    def truncate_last_record(self) -> None:
        """Cut the last gzip member in half, like a crawler killed mid-write."""
        last = self.records[-1]
        last["length"] //= 2
        self.out.truncate(last["offset"] + last["length"])
        self.out.seek(0, io.SEEK_END)

    def save(self, directory: Path) -> dict[str, Any]:
        data = self.out.getvalue()
        (directory / self.name).write_bytes(data)
        return {"file": self.name, "size": len(data), "records": self.records}


# ----------------------------------------------------------------------------- entry points


def crawl_start(seed: int) -> datetime:
    """A fixed fetch time per seed, somewhere in 2025."""
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(
        days=seed % 365, seconds=(seed * 7919) % 86400
    )


def write_sample_crawl(out_dir: Path, docs: int = 300, seed: int = 0, files: int = 4) -> list[Path]:
    """Write `files` .warc.gz files with `docs` fetches and expected.json; return their paths."""
    if files < 1:
        raise ValueError("files must be at least 1")
    rng = random.Random(f"sample-crawl:{seed}")
    pages = build_pages(rng, docs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = random.Random(f"record-ids:{seed}")
    when = crawl_start(seed)
    manifest_files = []
    for index in range(files):
        crawl_file = CrawlFile(f"CC-SAMPLE-{seed}-{index:05d}.warc.gz", ids)
        crawl_file.write_warcinfo(seed, when)
        for page in pages[index * len(pages) // files : (index + 1) * len(pages) // files]:
            when += timedelta(seconds=rng.randint(1, 9))
            crawl_file.write_fetch(page, when, rng)
        manifest_files.append(crawl_file.save(out_dir))
    kinds: dict[str, int] = {}
    for page in pages:
        kinds[page.kind] = kinds.get(page.kind, 0) + 1
    manifest = {
        "version": MANIFEST_VERSION,
        "seed": seed,
        "docs": docs,
        "kinds": dict(sorted(kinds.items())),
        "files": manifest_files,
    }
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    written = {f["file"] for f in manifest_files}
    for stale in out_dir.glob("CC-SAMPLE-*.warc.gz"):  # an earlier crawl's (another seed or
        if stale.name not in written:  # more files): extract would read it, expected.json not
            stale.unlink()
    return [out_dir / f["file"] for f in manifest_files] + [manifest_path]


def write_reference_articles(out_dir: Path, seed: int = 0, count: int = 75) -> Path:
    """`reference_articles.jsonl`: clean articles on reference topics (science, history,
    technology, health), standing in for the pages Wikipedia cites: the positives `make demo`
    trains its quality model on against the crawl's own pages, which cover every topic and
    include spam, lists and stubs. Like the pages Wikipedia cites, a third are encyclopedia
    entries and a third papers (curation/genres.py), so the crawl's pages of those genres can
    score high. A seed of its own keeps the WARC bytes of a seed unchanged."""
    rng = random.Random(f"reference-articles:{seed}")
    topics = [t for t in textgen.TOPICS if t.name in REFERENCE_TOPICS]
    path = Path(out_dir) / REFERENCE_NAME
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            if number % 3 == 0:
                article = textgen.write_article(rng, topic=rng.choice(topics))
            else:
                article = genres.write_genre_article(rng, REFERENCE_GENRES[number % 3 - 1])
            text = "\n\n".join([article.title, *article.paragraphs])
            record = {"url": f"https://reference.example/articles/{number}", "text": text}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="refinery sample-crawl",
        description="Write a deterministic synthetic crawl (.warc.gz files + expected.json).",
    )
    parser.add_argument(
        "--out", required=True, type=lambda text: Path(named_folder(text)), help="output folder"
    )
    parser.add_argument(
        "--docs", type=int, default=300, help=f"fetched pages (at least {MIN_DOCS})"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same bytes")
    parser.add_argument("--files", type=int, default=4, help="number of .warc.gz files")
    args = parser.parse_args(argv)
    if args.docs < MIN_DOCS or args.files < 1:
        parser.error(f"need --docs >= {MIN_DOCS} (one page of every kind) and --files >= 1")
    paths = write_sample_crawl(args.out, docs=args.docs, seed=args.seed, files=args.files)
    paths.append(write_reference_articles(args.out, seed=args.seed, count=max(20, args.docs // 4)))
    for path in paths:
        print(path)
    return 0
