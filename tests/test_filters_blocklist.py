import pytest

from curation.filters.blocklist import (
    BlocklistConfig,
    BlocklistFilter,
    domain_entry,
    normalize_host,
    parent_domains,
    url_key,
    url_prefixes,
)
from curation.sample_crawl import BLOCKLIST
from refinery.config import ConfigError

from conftest import shared_data


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("HTTP://WWW.Example.com:80/a/", "example.com/a"),
        ("https://example.com:443/a", "example.com/a"),
        ("https://example.com:8443/a", "example.com/a"),  # SquidGuard drops any port
        ("example.com/a/b/", "example.com/a/b"),
        ("http://www2.example.com/", "example.com"),
        ("http://example.com/a?x=1#frag", "example.com/a?x=1"),
        ("http://example.com./", "example.com"),
        ("http://example.com:bad/x", "example.com/x"),
        ("http://example.com/search//tlg", "example.com/search/tlg"),  # as SquidGuard reads it
        ("http://example.com/x/../fr/", "example.com/fr"),
        ("http://example.com/fr/%2E%2E/about", "example.com/about"),
    ],
)
def test_urls_compare_equal_after_normalisation(url, normalized):
    assert url_key(url) == normalized


def test_parent_domains_and_ip_hosts():
    assert parent_domains("a.b.example.com") == [
        "a.b.example.com",
        "b.example.com",
        "example.com",
        "com",
    ]
    assert parent_domains("178.128.25.172") == ["178.128.25.172"]
    assert normalize_host("WWW.Example.COM.") == "example.com"


def test_url_prefixes_stop_at_path_segments():
    assert url_prefixes("h.com/a/b?q=1") == ["h.com/a/b?q=1", "h.com/a/b", "h.com/a", "h.com"]


def lists(tmp_path, files):
    for rel, lines in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return tmp_path


def test_hosts_match_themselves_and_subdomains_but_not_lookalikes(tmp_path):
    root = lists(tmp_path, {"adult/domains": ["# comment", "", "example.com", "WWW.Bad.test"]})
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["adult"]))
    assert step.match("http://a.b.example.com/x", None) == "adult"
    assert step.match("http://example.com/", "example.com") == "adult"
    assert step.match("http://bad.test/", None) == "adult"
    assert step.match("http://notexample.com/", None) is None
    assert step.match("http://example.com.evil.org/", None) is None
    assert step.filter({"url": "https://www.example.com/", "host": "www.example.com"}) == (
        "blocklist:adult"
    )
    assert step.filter({"url": None, "host": None}) is None
    assert step.filter({"url": "http://[broken/", "host": None}) is None  # not an error row


def test_urls_match_as_path_prefixes(tmp_path):
    root = lists(tmp_path, {"malware/urls": ["files.example/dl/crack", "x.test/p?id=3"]})
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["malware"]))
    assert step.match("https://www.files.example/dl/crack/setup.exe", None) == "malware"
    assert step.match("http://FILES.example:80/dl/crack/", None) == "malware"
    # a port other than the scheme's let every listed URL of the site through
    assert step.match("https://files.example:8443/dl/crack/x", None) == "malware"
    assert step.match("http://files.example/dl/cracked", None) is None
    assert step.match("http://files.example/dl", None) is None
    assert step.match("http://x.test/p?id=3", None) == "malware"
    assert step.match("http://x.test/p?id=4", None) is None
    assert step.match("http://[broken/dl/crack", None) is None  # unparsable, not an error


def test_first_configured_category_names_the_reason(tmp_path):
    root = lists(tmp_path, {"adult/domains": ["both.test"], "gambling/domains": ["both.test"]})
    config = BlocklistConfig(lists_dir=str(root), categories=["gambling", "adult"])
    assert BlocklistFilter.from_config(config).match("http://both.test/", None) == "gambling"


def test_the_first_configured_category_wins_across_domains_and_urls(tmp_path):
    root = lists(
        tmp_path,
        {
            "adult/domains": ["example.com"],
            "gambling/domains": ["a.example.com"],
            "gambling/urls": ["b.test/casino"],
            "malware/domains": ["b.test"],
        },
    )
    config = BlocklistConfig(lists_dir=str(root), categories=["adult", "gambling", "malware"])
    step = BlocklistFilter.from_config(config)
    assert step.match("http://a.example.com/", None) == "adult"  # the parent, listed first
    assert step.match("http://b.test/casino/x", None) == "gambling"  # the URL, listed first
    assert step.match("http://b.test/other", None) == "malware"


def test_internationalised_and_scheme_less_hosts_match(tmp_path):
    root = lists(tmp_path, {"gambling/domains": ["xn--bstcasino-v2a.eu", "bücher.test"]})
    step = BlocklistFilter.from_config(
        BlocklistConfig(lists_dir=str(root), categories=["gambling"])
    )
    assert normalize_host("WWW.Bästcasino.EU.") == "xn--bstcasino-v2a.eu"
    assert step.match("http://bästcasino.eu/", "bästcasino.eu") == "gambling"
    assert step.match("http://xn--bcher-kva.test/", None) == "gambling"  # a Unicode entry
    assert step.match("bästcasino.eu/page", None) == "gambling"  # no scheme, no host column
    too_long = "ä" * 70 + ".test"  # no valid IDNA label: kept as it is, matching nothing
    assert normalize_host(too_long) == too_long and step.match(f"http://{too_long}/", None) is None


def test_hosts_convert_by_idna_2008_as_registries_and_browsers_do(tmp_path):
    # Python's IDNA 2003 codec made straße.de the other site strasse.de
    root = lists(tmp_path, {"gambling/domains": ["xn--strae-oqa.de", "fußball.de"]})
    step = BlocklistFilter.from_config(
        BlocklistConfig(lists_dir=str(root), categories=["gambling"])
    )
    assert normalize_host("Straße.de") == "xn--strae-oqa.de"
    assert step.match("http://straße.de/", None) == "gambling"
    assert step.match("http://xn--fuball-cta.de/", None) == "gambling"
    assert step.match("http://strasse.de/", None) is None
    assert step.match("http://bad_label.fußball.de/", None) == "gambling"  # its parent converts


def test_labels_idna_2008_refuses_convert_as_browsers_do(tmp_path):
    """IDNA 2008 refuses symbol and emoji labels, which browsers (and IDNA 2003) convert: a
    listed `xn--n3h.net` no longer matched `☃.net`, and a `☃.net` line blocked nothing."""
    root = lists(
        tmp_path,
        {"adult/domains": ["xn--ls8h.la", "☃.net"], "adult/urls": ["xn--i-7iq.ws/page"]},
    )
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["adult"]))
    assert step.match("http://💩.la/", None) == "adult"
    assert step.match("http://xn--n3h.net/x", None) == "adult"
    assert step.match("http://i❤.ws/page/1", None) == "adult"
    # UTS 46 keeps ß beside a symbol (IDNA 2003 made it ss: another host)
    assert normalize_host("straße☃.de") == "xn--strae-oqa1767d.de"
    # an ideographic or fullwidth full stop separates labels, as "." does
    assert normalize_host("☃。com") == "xn--n3h.com" == normalize_host("☃．com")


def test_a_listed_url_on_an_ipv6_host_matches_with_any_port(tmp_path):
    root = lists(tmp_path, {"malware/urls": ["[2001:db8::1]/dl/crack"]})
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["malware"]))
    assert step.match("http://[2001:db8::1]:8080/dl/crack/x", None) == "malware"
    assert step.match("http://[2001:db8::2]/dl/crack", None) is None


def test_plain_domain_files_and_url_words(tmp_path):
    root = lists(tmp_path, {"adult/domains": ["a.test"], "porn.list": ["tube.example"]})
    config = BlocklistConfig(
        lists_dir=str(root),
        categories=["adult"],
        domain_files={"adult": [str(root / "porn.list")]},
        url_words=["casino"],
    )
    step = BlocklistFilter.from_config(config)
    assert step.match("http://m.tube.example/v", None) == "adult"
    assert step.match("http://news.example/best-casino-2024", None) == "url_word"
    assert step.match("http://news.example/casinos", None) is None


@pytest.mark.parametrize(
    ("line", "host"),
    [
        ("EXAMPLE-UPPER.COM", "example-upper.com"),
        ("trailing-dot.com.", "trailing-dot.com"),
        ("192.0.2.55", "192.0.2.55"),
        ("withport.com:8080", "withport.com"),
        ("0.0.0.0 hostsformat.com", "hostsformat.com"),
        ("127.0.0.1\ttabhosts.com", "tabhosts.com"),
        ("::1 v6host.com", "v6host.com"),
        ("inline-comment.com # bad site", "inline-comment.com"),
        ("*.wildcard.com", "wildcard.com"),
        (".leadingdot.com", "leadingdot.com"),
        ("2001:db8::1", "2001:db8::1"),
        ("two words", None),
        ("http://x.com/a", None),  # a URL blocks one page, not its host
        ("bad!host.com", None),
        ("www.Example.com", "example.com"),
        ("bästcasino.eu", "xn--bstcasino-v2a.eu"),
        # a hosts file's header lines name the machine itself: nothing to block, nothing said
        ("127.0.0.1 localhost", ""),
        ("::1 localhost", ""),
        ("FE80::1%lo0 localhost", ""),
        ("0.0.0.0 0.0.0.0", ""),
        ("255.255.255.255 broadcasthost", ""),
    ],
)
def test_domain_lists_are_read_in_the_forms_other_lists_are_written_in(line, host):
    assert domain_entry(line) == host


def test_a_domain_list_line_that_names_no_domain_is_said(tmp_path, capsys):
    root = lists(tmp_path, {"x.list": ["# hosts", "0.0.0.0 ads.test", "two words", "a b c"]})
    config = BlocklistConfig(
        lists_dir=str(root), categories=[], domain_files={"ads": [str(root / "x.list")]}
    )
    step = BlocklistFilter.from_config(config)
    assert step.match("http://www.ads.test/", None) == "ads"
    assert len(step.domains) == 1
    err = capsys.readouterr().err
    assert "x.list: 2 line(s) name no domain and block nothing (line 3: 'two words')" in err


def test_a_category_folder_without_lists_fails_naming_what_it_holds(tmp_path):
    lists(tmp_path, {"adult/domains.gz": ["x"], "empty/.keep": [""]})
    with pytest.raises(
        ConfigError, match=r"adult has neither .* \(it holds domains.gz; unpack the .gz ones\)"
    ):
        BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["adult"]))
    with pytest.raises(ConfigError, match=r"empty has neither .* \(it holds .keep\)"):
        BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["empty"]))
    # UT1's adult: a plain urls file beside domains.gz, whose domains would block nothing
    lists(tmp_path, {"mixed/domains.gz": ["x"], "mixed/urls": ["x.test/a"]})
    with pytest.raises(ConfigError, match=r"mixed holds domains.gz, which is not read: unpack"):
        BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["mixed"]))


def test_missing_lists_fail_naming_the_path(tmp_path):
    with pytest.raises(ConfigError, match="no category folder .*nope"):
        BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["nope"]))
    config = BlocklistConfig(lists_dir=str(tmp_path), categories=[], domain_files={"x": ["gone"]})
    with pytest.raises(ConfigError, match="domain_files.x: no file .*gone"):
        BlocklistFilter.from_config(config)
    with pytest.raises(ConfigError, match="name at least one category"):
        BlocklistConfig(categories=[])


def test_shipped_lists_block_the_sample_crawl_hosts():
    step = BlocklistFilter.from_config(BlocklistConfig())  # conf/blocklist from the project root
    for category, entries in BLOCKLIST.items():
        for domain in entries["domains"]:
            assert step.match(f"https://sub.{domain}/page.html", None) == category
        for url in entries["urls"]:
            assert step.match(f"http://{url}/more", None) == category


def test_real_ut1_lists_load_and_match():
    root = shared_data("blocklist", "ut1")
    step = BlocklistFilter.from_config(
        BlocklistConfig(lists_dir=str(root), categories=["gambling", "adult", "phishing"])
    )
    assert len(step.domains) > 20_000
    first = next(line for line in (root / "gambling" / "domains").read_text().splitlines() if line)
    assert step.match(f"https://www.shop.{first}/", None) == "gambling"
    assert step.match("https://en.wikipedia.org/wiki/Casino", None) is None


def test_the_entry_table_finds_what_a_dict_would_and_nothing_else():
    from curation.filters.blocklist import EntryTable

    listed = {f"site{i}.example": ("adult", "gambling")[i % 2] for i in range(500)}
    table = EntryTable(listed)
    assert len(table) == 500 and table.categories == ["adult", "gambling"]
    assert all(table.get(key) == category for key, category in listed.items())
    assert [table.get(k) for k in ("site500.example", "example", "")] == [None] * 3
    assert EntryTable({}).get("x") is None


def test_a_host_in_several_lists_is_the_first_configured_categorys(tmp_path):
    # the extra domain file of `adult` is read after every UT1 folder: it still ranks first
    root = lists(
        tmp_path,
        {"adult/domains": ["unrelated.test"], "gambling/domains": ["casino.test"],
         "porn.list": ["casino.test", "sub.x.test"], "x/domains": ["x.test"]},
    )  # fmt: skip
    config = BlocklistConfig(
        lists_dir=str(root),
        categories=["adult", "gambling", "x"],
        domain_files={"adult": [str(root / "porn.list")]},
    )
    step = BlocklistFilter.from_config(config)
    assert step.match("https://casino.test/", None) == "adult"
    assert step.match("http://sub.x.test/", None) == "adult"  # its parent is x's


def test_a_listed_numbered_www_host_blocks_itself_not_its_parent(tmp_path):
    root = lists(tmp_path, {"dating/domains": ["www5.wt.to", "www.site.test"]})
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["dating"]))
    assert step.match("http://www5.wt.to/a", None) == "dating"
    assert step.match("http://m.www5.wt.to/", None) == "dating"
    assert step.match("http://wt.to/", None) is None and step.match("http://o.wt.to/", None) is None
    assert step.match("http://site.test/", None) == "dating"  # `www.` is the site itself


def test_url_words_of_any_script_and_in_a_row(tmp_path):
    root = lists(tmp_path, {"adult/domains": ["a.test"]})
    config = BlocklistConfig(
        lists_dir=str(root), categories=["adult"], url_words=["порно", "sex-toys"]
    )
    step = BlocklistFilter.from_config(config)
    assert step.match("http://example.com/порно/", None) == "url_word"
    assert step.match("http://example.com/%D0%BF%D0%BE%D1%80%D0%BD%D0%BE/", None) == "url_word"
    assert step.match("http://example.com/best_sex-toys.html", None) == "url_word"
    assert step.match("http://example.com/toys-sex", None) is None  # not in that order
    assert step.match("http://example.cn/sex-toys视频/1.html", None) == "url_word"  # scripts meet
    czech = BlocklistFilter.from_config(
        BlocklistConfig(lists_dir=str(root), categories=["adult"], url_words=["anal"])
    )
    assert czech.match("https://example.cz/analýza-trhu", None) is None  # one Latin word
    assert step.match("http://example.com/sex", None) is None


def test_a_url_without_a_scheme_keeps_its_host_when_another_url_follows():
    assert url_key("www.site.com/r/?u=http://x") == "site.com/r?u=http://x"
    assert url_key("0-casino.info/r?u=https://x") == "0-casino.info/r?u=https://x"


def test_only_prefixes_as_long_as_the_longest_listed_url_are_made():
    url = "h.com/" + "a/" * 20_000
    assert url_prefixes(url, 8) == ["h.com/a", "h.com"]
    assert url_prefixes("h.com/a/b?q=1", 100) == url_prefixes("h.com/a/b?q=1")


def test_a_percent_encoded_host_is_read_as_browsers_read_it(tmp_path):
    root = lists(tmp_path, {"gambling/domains": ["0-casino.info", "xn--bstcasino-v2a.eu"]})
    config = BlocklistConfig(lists_dir=str(root), categories=["gambling"])
    step = BlocklistFilter.from_config(config)
    assert step.match("http://%30-casino.info/", None) == "gambling"
    assert step.match("http://b%C3%A4stcasino.eu/", None) == "gambling"


def test_a_listed_url_matches_its_equivalent_escapes(tmp_path):
    root = lists(tmp_path, {"malware/urls": ["h.test/~ddi1/", "app.test/SuperM%C3%B3vil/x"]})
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(root), categories=["malware"]))
    assert step.match("http://h.test/%7Eddi1/", None) == "malware"
    assert step.match("http://h.test/%7eddi1/page", None) == "malware"
    assert step.match("https://app.test/SuperMóvil/x", None) == "malware"
    assert step.match("https://app.test/superm%c3%b3vil/x", None) == "malware"
    assert step.match("https://app.test/SuperMovil/x", None) is None


def test_a_byte_order_mark_is_not_part_of_the_first_entry(tmp_path):
    for name, first in (("urls", "http://schemed.test/a"), ("domains", "first.test")):
        path = tmp_path / "c" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\xef\xbb\xbf" + f"{first}\n# comment\n".encode())
    (tmp_path / "d" / "urls").parent.mkdir()
    (tmp_path / "d" / "urls").write_bytes(b"\xef\xbb\xbf# a comment first\nbad.test/x\n")
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["c"]))
    assert step.match("http://schemed.test/a/b", None) == "c"
    assert step.match("http://first.test/", None) == "c"
    step = BlocklistFilter.from_config(BlocklistConfig(lists_dir=str(tmp_path), categories=["d"]))
    assert len(step.urls) == 1
    assert step.match("http:///index.html", None) is None


@pytest.mark.parametrize("url", [None, "", "http://[::1", "http:///index.html"])
def test_documents_without_a_host_are_kept_and_counted(url):
    step = BlocklistFilter.from_config(BlocklistConfig())  # the shipped lists
    assert step.filter({"url": url, "host": None}) is None
    assert step.drain_counters()["blocklist:no_host"] == 1
    assert step.filter({"url": "http://example.org/", "host": None}) is None
    assert step.drain_counters()["blocklist:no_host"] == 0


def test_a_document_without_a_host_rejected_by_a_url_word_is_not_counted_as_unchecked():
    step = BlocklistFilter({}, {}, url_words=["porn"], categories=["adult"])
    assert step.filter({"url": "/porn/video.html", "host": None}) == "blocklist:url_word"
    assert step.drain_counters() == {}
    assert step.filter({"url": "http://./a", "host": "."}) is None  # no host once normalised
    assert step.drain_counters() == {"blocklist:no_host": 1}
