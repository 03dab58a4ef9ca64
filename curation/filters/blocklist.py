"""URL blocklist: drop documents whose host or URL is listed (UT1 categories, plain domain lists).

UT1 (Université Toulouse 1) publishes one folder per category with `domains` and `urls` files,
as SquidGuard reads them; RefinedWeb and FineWeb filter Common Crawl with it. Lookups are set
membership only: a host matches when it or any parent domain is listed (`a.b.example.com`
matches `example.com`), a URL matches when a listed URL equals it or is a path-segment prefix
of it, after both sides are normalised the same way (internationalised hosts in punycode, as
UT1 lists them). A document matched by several categories is named by the first configured.
"""

from __future__ import annotations

import hashlib
import re
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from curation.dedup.text import ascii_host, normal_path
from curation.filters.base import Document, DocumentFilter
from refinery.config import ConfigError, resolve_path

LIST_KINDS = ("domains", "urls")  # the files of a UT1 category folder
# Latin letters (accented too: `analýza` is one word) and digits, or letters and digits of
# other scripts: `porn视频` is two words, split where the scripts meet
_LATIN = "a-z0-9\u00c0-\u024f\u1e00-\u1eff"
URL_WORD = re.compile(rf"[{_LATIN}]+|[^\W_{_LATIN}]+")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
WWW_N = re.compile(r"^www\d+\.")  # www2. and the like, which a URL's key leaves out
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|[0-9a-f:]*:[0-9a-f:.]*")  # a name, IPv4 or IPv6
HOSTS_FILE_ADDRESS = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:]*(?:%\w+)?")
# The names a hosts file maps for the machine itself (its header lines), not blocked hosts
HOSTS_FILE_OWN = frozenset(
    ["localhost", "localhost.localdomain", "local", "broadcasthost", "0.0.0.0", "ip6-localhost"]
    + [f"ip6-{name}" for name in ("loopback", "localnet", "mcastprefix", "allnodes")]
    + [f"ip6-{name}" for name in ("allrouters", "allhosts")]
)


@dataclass
class BlocklistConfig:
    # Folder of UT1-style category folders (<dir>/<category>/{domains,urls}); relative paths
    # are read from the working directory, else from the project root (conf/ ships a small one).
    lists_dir: str = "conf/blocklist"
    # Categories whose documents are dropped, checked in this order (the first match names
    # the reason `blocklist:<category>`).
    categories: list[str] = field(
        default_factory=lambda: ["adult", "gambling", "malware", "phishing"]
    )
    # Plain domain lists added to a category: {category: [file, ...]}, e.g.
    # {adult: [pi_blocklist_porn_top1m.list]}. One domain per line, # comments; hosts-file
    # lines (0.0.0.0 example.com), `*.example.com` and `.example.com` are read too.
    domain_files: dict[str, list[str]] = field(default_factory=dict)
    # Words that drop a document when they appear among its URL's words (split on anything
    # not a letter or digit, and where Latin letters meet another script, the path
    # percent-decoded; an entry of several words, `sex-toys`, matches them in a row); reason
    # `blocklist:url_word`. Empty by default: words such as "sex" also name health pages, so
    # this is opt-in (RefinedWeb pairs it with a soft list).
    url_words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.categories and not self.domain_files and not self.url_words:
            raise ConfigError(
                "filter.blocklist: name at least one category, domain file or URL word, "
                "or drop `blocklist` from filter.steps"
            )


def normalize_host(host: str) -> str:
    """Percent-decoded (as browsers read a host), lower case, no trailing dot, no leading
    `www.`, Unicode labels in punycode (`bästcasino.eu` -> `xn--bstcasino-v2a.eu`, the form
    the lists hold). `www5.` stays: a listed `www5.wt.to` is that host, not all of `wt.to`
    (`www5.example.com` still matches a listed `example.com`, its parent)."""
    host = ascii_host(unquote(host.strip()).lower().rstrip("."))  # %30-casino is 0-casino
    return host.removeprefix("www.")


def with_scheme(url: str) -> str:
    """`url`, read as http when it has no scheme (UT1 lists URLs without one), even when
    another URL follows in its query (`site.com/r?u=http://x`)."""
    return url if SCHEME.match(url.lstrip()) else "http://" + url.lstrip()


def url_host(url: str | None) -> str:
    """The URL's host (a URL without a scheme read as http), or "" when it has none or cannot
    be parsed."""
    try:
        return urlsplit(with_scheme(url)).hostname or "" if url else ""
    except ValueError:
        return ""


def url_key(url: str) -> str:
    """`host/path[?query]` with scheme, `www.` (`www2.`), case, port, fragment and trailing slash
    removed, so `HTTP://WWW.Example.com:8080/a/` and `example.com/a` compare equal: the form
    UT1 lists URLs in, and SquidGuard's rule for them (a port on the listed site's URL still
    names the listed page). The path's escapes and dot segments are normalised as dedup's
    (`%7E` is `~`, `/café` is `/caf%C3%A9`, `/x/../fr` is `/fr`), and `//` is `/`, as
    SquidGuard collapses it; dedup's key is stricter, keeping scheme, `www.` and `//` apart."""
    url = with_scheme(url)
    try:
        parts = urlsplit(url.strip().lower())
    except ValueError:  # a malformed IPv6 literal: the URL matches no listed entry
        return url.strip().lower()
    host = WWW_N.sub("", normalize_host(parts.hostname or ""), count=1)
    path = re.sub("/{2,}", "/", normal_path(parts.path)).lower().rstrip("/")
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


def url_words_of(text: str) -> list[str]:
    """The words of a URL or of a configured URL word: lower case, split at anything not a
    letter or digit and where Latin letters meet another script (a percent-encoded path is
    decoded first by the caller)."""
    return URL_WORD.findall(text.lower())


def parent_domains(host: str) -> list[str]:
    """`a.b.example.com` -> [a.b.example.com, b.example.com, example.com, com]; an IP address
    is only itself."""
    if ":" in host or host.replace(".", "").isdigit():
        return [host]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def url_prefixes(normalized: str, longest: int | None = None) -> list[str]:
    """Path-segment prefixes of a normalised URL, longest first: `h/a/b?q` -> [h/a/b?q, h/a/b,
    h/a, h] (SquidGuard matches a listed URL against the start of the requested one); only
    those of at most `longest` characters (the longest listed URL): a 40 KB URL made 20,000
    prefixes of up to 40 KB each."""
    longest = len(normalized) if longest is None else longest
    base = normalized.split("?", 1)[0]
    prefixes = [normalized] if base != normalized and len(normalized) <= longest else []
    ends = [i for i, char in enumerate(base[: longest + 1]) if char == "/"]
    if len(base) <= longest:
        ends.append(len(base))
    return prefixes + [base[:end] for end in reversed(ends)]


def domain_entry(line: str) -> str | None:
    """The normalised host a domain-list line names, or None when it names none. Besides a
    bare domain, the forms other lists are written in: a hosts file's `0.0.0.0 example.com`,
    a comment after the entry, a port, and squid's or dnsmasq's `.example.com` and
    `*.example.com` (it and its subdomains, which is how every listed domain matches here).
    A hosts file's own names (localhost, broadcasthost) give "": they block nothing."""
    bare = line.strip().lower()
    if HOST.fullmatch(bare) and ":" not in bare:  # most lines: a domain as it is
        return normalize_host(bare)
    fields = bare.split("#", 1)[0].split()
    if len(fields) == 2 and HOSTS_FILE_ADDRESS.fullmatch(fields[0]):
        if fields[1] in HOSTS_FILE_OWN:
            return ""
        fields = fields[1:]
    if len(fields) != 1 or "/" in fields[0]:  # a URL blocks a page, not its whole host
        return None
    host = fields[0].removeprefix("*.").lstrip(".")
    if host.count(":") == 1:  # a port; IPv6 addresses hold several colons
        host = host.split(":", 1)[0]
    host = normalize_host(host)
    return host if HOST.fullmatch(host) else None


def read_domains(path: Path) -> list[str]:
    """The hosts a domain list names (`domain_entry`). Its lines that name none are said, with
    the first of them, since they would block nothing without a word."""
    hosts, unusable = [], []
    for number, line in enumerate(_lines(path), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            host = domain_entry(line)
            if host:
                hosts.append(host)
            elif host is None:
                unusable.append((number, line.strip()))
    if unusable:
        number, line = unusable[0]
        print(
            f"filter: warning: {path}: {len(unusable)} line(s) name no domain and block "
            f"nothing (line {number}: {line[:80]!r})",
            file=sys.stderr,
        )
    return hosts


def read_list(path: Path) -> list[str]:
    """Entries of a list file: one per line, blank lines and `#` comments skipped."""
    return [
        line.strip() for line in _lines(path) if line.strip() and not line.lstrip().startswith("#")
    ]


def _lines(path: Path) -> list[str]:
    try:
        # utf-8-sig: a byte-order mark (lists saved on Windows) is not part of the first line
        return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as err:
        raise ConfigError(f"filter.blocklist: cannot read {path}: {err.strerror}") from None


def list_files(config: BlocklistConfig) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(category, folder) of each configured UT1 category and (category, file) of each extra
    domain list, every one checked to exist: cheap, so jobs call it before Spark starts."""
    folders = [(c, resolve_path(config.lists_dir) / c) for c in config.categories]
    for _, folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"filter.blocklist: no category folder {folder}")
        if not any((folder / kind).is_file() for kind in LIST_KINDS):
            names = sorted(p.name for p in folder.iterdir())
            unpack = "; unpack the .gz ones" if any(n.endswith(".gz") for n in names) else ""
            raise ConfigError(
                f"filter.blocklist: category folder {folder} has neither a `domains` nor a "
                f"`urls` file, the UT1 layout (it holds {', '.join(names[:5]) or 'nothing'}"
                f"{unpack})"
            )
        packed = [
            f"{k}.gz"
            for k in LIST_KINDS
            if (folder / f"{k}.gz").is_file() and not (folder / k).is_file()
        ]
        if packed:  # UT1's adult ships domains.gz beside a plain urls file
            raise ConfigError(
                f"filter.blocklist: category folder {folder} holds {', '.join(packed)}, which is "
                "not read: unpack it (gzip -d), or its entries block nothing"
            )
    files = [(c, resolve_path(n)) for c, names in config.domain_files.items() for n in names]
    for category, path in files:
        if not path.is_file():
            raise ConfigError(f"filter.blocklist.domain_files.{category}: no file {path}")
    return folders, files


class EntryTable:
    """Normalised list entries -> category, held as sorted 64-bit hashes in an `array` with a
    category index each: about 13 bytes an entry (benchmarks/blocklist_memory.py), where a
    dict of strings took about 94. Every Python worker of every executor holds one (the full
    UT1 adult list has millions of domains), and the driver broadcasts it. Two entries whose
    hashes collide (odds about n / 2^64 a lookup) share one category."""

    def __init__(self, entries: dict[str, str]):
        self.categories = list(dict.fromkeys(entries.values()))
        code = {category: i for i, category in enumerate(self.categories)}
        pairs = sorted((entry_hash(key), code[category]) for key, category in entries.items())
        self.hashes = array("Q", [h for h, _ in pairs])  # from lists: no spare capacity
        self.codes = array("H", [c for _, c in pairs])

    def __len__(self) -> int:
        return len(self.hashes)

    def get(self, key: str) -> str | None:
        wanted = entry_hash(key)
        i = bisect_left(self.hashes, wanted)
        if i < len(self.hashes) and self.hashes[i] == wanted:
            return self.categories[self.codes[i]]
        return None


def entry_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class BlocklistFilter(DocumentFilter):
    """Reject documents on listed hosts or URLs; reason `blocklist:<category>`. Documents
    without a host to check are kept and counted as `blocklist:no_host`."""

    name = "blocklist"

    def __init__(
        self,
        domains: dict[str, str],
        urls: dict[str, str],
        url_words: list[str] = (),
        categories: list[str] = (),
    ):
        # normalised domain / URL -> category (the first configured category that lists it)
        self.domains = EntryTable(domains)
        self.urls = EntryTable(urls)
        # a word, or words in a row (`sex-toys`), as the URL's words are split
        self.url_words = frozenset(tuple(url_words_of(w)) for w in url_words) - {()}
        self.url_word_lengths = sorted({len(entry) for entry in self.url_words})
        self.longest_url = max(map(len, urls), default=0)
        # which category names a document several match (unlisted ones after, in match order)
        self.rank = {category: i for i, category in enumerate(dict.fromkeys(categories))}

    @classmethod
    def from_config(cls, config: BlocklistConfig) -> BlocklistFilter:
        """Load the configured categories (UT1 layout) and extra domain files; runs on the
        driver, so a missing list fails before Spark starts."""
        order = list(dict.fromkeys([*config.categories, *config.domain_files]))
        rank = {category: i for i, category in enumerate(order)}
        domains: dict[str, str] = {}
        urls: dict[str, str] = {}

        def add(table: dict[str, str], entry: str, category: str) -> None:
            # an entry in several lists is the first configured category's, whichever list
            # (a UT1 folder or an extra domain file) was read first
            if entry not in table or rank[category] < rank[table[entry]]:
                table[entry] = category

        folders, domain_files = list_files(config)
        for category, folder in folders:
            if (folder / "domains").is_file():
                for host in read_domains(folder / "domains"):
                    add(domains, host, category)
            if (folder / "urls").is_file():
                for entry in read_list(folder / "urls"):
                    add(urls, url_key(entry), category)
        for category, path in domain_files:
            for host in read_domains(path):
                add(domains, host, category)
        return cls(domains, urls, config.url_words, order)

    def match(self, url: str | None, host: str | None) -> str | None:
        """The category (or `url_word`) that blocks this URL/host, else None: of several
        matching categories (a listed subdomain, its listed parent, a listed URL), the first
        configured."""
        return self._match(url, normalize_host(host or url_host(url)))

    def _match(self, url: str | None, host: str) -> str | None:
        """`match` for a host already normalised."""
        found = [self.domains.get(d) for d in parent_domains(host)] if host else []
        if url and self.urls:
            found += [self.urls.get(p) for p in url_prefixes(url_key(url), self.longest_url)]
        found = [category for category in found if category is not None]
        if found:
            return min(found, key=lambda category: self.rank.get(category, len(self.rank)))
        return "url_word" if url and self.url_words and self._has_url_word(url) else None

    def _has_url_word(self, url: str) -> bool:
        words = url_words_of(unquote(url))
        for size in self.url_word_lengths:
            if any(tuple(words[i : i + size]) in self.url_words for i in range(len(words))):
                return True
        return False

    def filter(self, doc: Document) -> str | None:
        url = doc.get("url")
        host = normalize_host(doc.get("host") or url_host(url))
        category = self._match(url, host)
        if category:
            return self.reason(category)
        if not host:
            self.count("blocklist:no_host")  # kept unchecked: said, as badwords:no_list
        return None
