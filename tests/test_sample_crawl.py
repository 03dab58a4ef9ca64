"""The synthetic crawl is ground truth for every curation test, so it is checked here first:
bytes are deterministic, every record reads with warcio, expected.json matches the files,
each page kind is present and the broken records are broken in the way the manifest says."""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import brotli
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataException, ChunkedDataReader

from curation import sample_crawl, textgen
from curation.sample_crawl import MIN_DOCS, write_sample_crawl

REPO = Path(__file__).resolve().parents[1]
RESERVED_TLDS = (".example", ".test", ".invalid")
KINDS = {
    "article", "duplicate", "near_duplicate", "spam", "short", "listy", "pii", "non_html",
    "redirect", "not_found", "revisit", "broken:http_header", "broken:bad_chunked",
    "broken:truncated_gzip",
    *(f"foreign:{lang}" for lang in ("de", "fr", "es", "ru", "ja", "zh")),
    *(f"blocklisted:{c}" for c in ("adult", "gambling", "malware", "phishing")),
}  # fmt: skip


class _Brotli:
    """warcio 1.8 expects brotlipy's Decompressor (decompress, a writable unused_data);
    the `brotli` package >= 1.2 has process() instead and refuses new attributes."""

    unused_data = b""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.process(data)


@pytest.fixture(autouse=True, scope="module")
def brotli_for_warcio():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BufferedReader.DECOMPRESSORS, "br", _Brotli)
        yield


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crawl")
    write_sample_crawl(out, docs=300, seed=0, files=4)
    return out


@pytest.fixture(scope="module")
def manifest(crawl: Path) -> dict:
    return json.loads((crawl / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def responses(crawl: Path, manifest: dict) -> list[tuple[dict, object, bytes]]:
    """(manifest entry, warcio record, decoded payload) for every response/revisit read."""
    found = []
    for entry_file in manifest["files"]:
        entries = {e["offset"]: e for e in entry_file["records"]}
        for record, payload, offset in read_records(crawl / entry_file["file"]):
            if record.rec_type in ("response", "revisit"):
                found.append((entries[offset], record, payload))
    return found


def read_records(path: Path):
    """Yield (record, decoded payload, offset); offsets are only known once a record is read."""
    with path.open("rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            payload = record.content_stream().read()
            yield record, payload, records.get_record_offset()


def records_of(manifest: dict, warc_type: str = "response") -> list[dict]:
    return [r for f in manifest["files"] for r in f["records"] if r["warc_type"] == warc_type]


def http_header(record, name: str) -> str | None:
    return record.http_headers.get_header(name)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(crawl: Path, tmp_path: Path):
    paths = write_sample_crawl(tmp_path, docs=300, seed=0, files=4)
    assert [p.name for p in paths][-1] == "expected.json"
    for path in paths:
        assert path.read_bytes() == (crawl / path.name).read_bytes(), path.name


def test_other_seed_gives_other_bytes(tmp_path: Path):
    a = write_sample_crawl(tmp_path / "a", docs=MIN_DOCS, seed=1, files=2)
    b = write_sample_crawl(tmp_path / "b", docs=MIN_DOCS, seed=2, files=2)
    assert [p.name for p in a] == [
        "CC-SAMPLE-1-00000.warc.gz",
        "CC-SAMPLE-1-00001.warc.gz",
        "expected.json",
    ]
    assert a[0].read_bytes() != b[0].read_bytes()


def test_a_rewritten_crawl_leaves_no_file_of_the_earlier_one(tmp_path: Path):
    write_sample_crawl(tmp_path, docs=MIN_DOCS, seed=1, files=3)
    (tmp_path / "notes.txt").write_text("mine")
    paths = write_sample_crawl(tmp_path, docs=MIN_DOCS, seed=2, files=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in paths] + ["notes.txt"]
    )


def test_gzip_members_have_zero_mtime(crawl: Path, manifest: dict):
    for entry_file in manifest["files"]:
        data = (crawl / entry_file["file"]).read_bytes()
        for record in entry_file["records"]:
            member = data[record["offset"] : record["offset"] + 10]
            assert member[:3] == b"\x1f\x8b\x08" and member[4:8] == b"\0\0\0\0"


# ----------------------------------------------------------------------------- manifest vs files


def test_manifest_offsets_tile_each_file(crawl: Path, manifest: dict):
    for entry_file in manifest["files"]:
        size = (crawl / entry_file["file"]).stat().st_size
        assert size == entry_file["size"]
        end = 0
        for record in entry_file["records"]:
            assert record["offset"] == end
            end += record["length"]
        assert end == size


def test_every_record_but_the_truncated_one_is_a_whole_gzip_member(crawl: Path, manifest: dict):
    truncated = manifest["files"][-1]["records"][-1]
    assert (truncated["kind"], truncated["warc_type"]) == ("broken:truncated_gzip", "response")
    for entry_file in manifest["files"]:
        data = (crawl / entry_file["file"]).read_bytes()
        for record in entry_file["records"]:
            member = data[record["offset"] : record["offset"] + record["length"]]
            decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            text = decompressor.decompress(member)
            whole = decompressor.eof and not decompressor.unused_data
            assert whole == (record is not truncated), record
            assert text.startswith(b"WARC/1.0\r\nWARC-Type: " + record["warc_type"].encode())


def test_records_per_file_match_manifest(crawl: Path, manifest: dict):
    total_fetches = 0
    for entry_file in manifest["files"]:
        read = [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"), off)
                for r, _, off in read_records(crawl / entry_file["file"])]  # fmt: skip
        expected = [(r["warc_type"], r["record_id"], r["offset"]) for r in entry_file["records"]]
        assert read == expected
        assert read[0][0] == "warcinfo"
        total_fetches += sum(1 for r in entry_file["records"] if r["warc_type"] == "request")
    assert total_fetches == manifest["docs"] == sum(manifest["kinds"].values()) == 300


def test_fetch_is_request_response_metadata(manifest: dict):
    for entry_file in manifest["files"]:
        types = [r["warc_type"] for r in entry_file["records"][1:]]
        triples = [tuple(types[i : i + 3]) for i in range(0, len(types), 3)]
        for triple in triples[:-1]:
            assert triple in {
                ("request", "response", "metadata"),
                ("request", "revisit", "metadata"),
            }
    last = manifest["files"][-1]["records"]
    assert [r["warc_type"] for r in last[-2:]] == ["request", "response"]
    assert last[-1]["kind"] == "broken:truncated_gzip"


def test_every_kind_appears(manifest: dict):
    assert set(manifest["kinds"]) == KINDS
    response_kinds = {r["kind"] for r in records_of(manifest)} | {
        r["kind"] for r in records_of(manifest, "revisit")
    }
    assert response_kinds == KINDS


def test_too_few_docs_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="at least"):
        write_sample_crawl(tmp_path, docs=MIN_DOCS - 1)


# ----------------------------------------------------------------------------- payloads


def test_good_responses_decode(responses):
    seen_encodings = Counter()
    for entry, record, payload in responses:
        if entry["kind"].startswith("broken:") or entry["warc_type"] == "revisit":
            continue
        seen_encodings.update(entry["encodings"])
        assert record.http_headers.get_statuscode() == str(entry["status"])
        content_encoding = [e for e in entry["encodings"] if e != "chunked"]
        assert http_header(record, "Content-Encoding") == (", ".join(content_encoding) or None)
        if "chunked" in entry["encodings"]:
            assert http_header(record, "Transfer-Encoding") == "chunked"
            assert http_header(record, "Content-Length") is None
        else:
            raw_length = record.length - len(record.http_headers.to_bytes())
            assert http_header(record, "Content-Length") == str(raw_length)
        if entry["mime"] == "text/html" and entry["status"] == 200:
            text = payload.decode(entry["charset"])  # strict: the bytes really are that charset
            assert sample_crawl.escape(entry["snippet"]) in text, entry["url"]
            assert sample_crawl.escape(entry["title"]) in text
    assert {"gzip", "deflate", "br", "chunked"} <= set(seen_encodings)


def test_non_html_bodies_are_valid(responses):
    magic = {
        "png": b"\x89PNG\r\n\x1a\n",
        "jpeg": b"\xff\xd8\xff",
        "pdf": b"%PDF-1.4",
        "robots": b"User-agent: *",
    }
    variants = set()
    for entry, _, payload in responses:
        if entry["kind"] != "non_html":
            continue
        variants.add(entry["variant"])
        if entry["variant"] == "json":
            assert json.loads(payload)["items"]
        else:
            assert payload.startswith(magic[entry["variant"]])
        if entry["variant"] == "pdf":
            assert payload.rstrip().endswith(b"%%EOF")
        if entry["variant"] == "png":
            assert zlib.crc32(payload[12:29]) == int.from_bytes(payload[29:33], "big")
    assert variants == {"png", "jpeg", "pdf", "robots", "json"}


def test_charset_declarations(responses):
    sources = Counter()
    for entry, record, payload in responses:
        if entry["mime"] != "text/html" or entry["kind"].startswith("broken") or not payload:
            continue
        source = entry["charset_source"]
        sources[source] += 1
        content_type = http_header(record, "Content-Type") or ""
        header = re.search(r"charset=([\w-]+)", content_type)
        head = payload[:1024].decode("ascii", "replace")
        meta = re.search(r'<meta charset="([\w-]+)">', head)
        equiv = re.search(
            r'<meta http-equiv="Content-Type" content="text/html; charset=([\w-]+)">', head
        )
        assert bool(header) == (source in ("header", "header+meta", "conflict")), entry["url"]
        assert bool(meta) == (source in ("meta", "header+meta", "conflict"))
        assert bool(equiv) == (source == "http-equiv")
        declared = header or meta or equiv
        if declared:
            assert declared.group(1).lower() == entry["charset"]
        if source == "conflict":  # the header wins; the meta tag names another charset
            assert meta.group(1).lower() != entry["charset"]
    assert set(sources) == {"header+meta", "header", "meta", "http-equiv", "none", "conflict"}


def test_foreign_pages_use_legacy_charsets(responses):
    charsets = Counter()
    for entry, _, payload in responses:
        if not entry["kind"].startswith("foreign:"):
            continue
        charsets[entry["charset"]] += 1
        assert entry["lang"] == entry["kind"].split(":")[1]
        assert entry["snippet"] in payload.decode(entry["charset"])
        if entry["charset"] != "utf-8":
            with pytest.raises(UnicodeDecodeError):
                payload.decode("utf-8")
    legacy = {"windows-1252", "iso-8859-1", "windows-1251", "shift_jis", "gb2312", "gbk"}
    assert legacy <= set(charsets)


def test_pii_values_are_in_the_page(responses):
    types = set()
    for entry, _, payload in responses:
        if entry["kind"] != "pii":
            continue
        text = payload.decode(entry["charset"])
        for item in entry["pii"]:
            types.add(item["type"])
            assert item["value"] in text
            if item["type"] == "credit_card":
                assert textgen.luhn_valid(item["value"])
            if item["type"] == "email":
                assert item["value"].endswith(RESERVED_TLDS)
    assert types == {"email", "phone_intl", "phone_us", "ipv4", "ipv6", "credit_card", "ssn"}


def test_every_planted_pii_value_is_one_the_redactor_finds():
    """The ground truth says each value is PII: the redactor must agree, or a kept page's
    planted value reads as a miss."""
    from curation.pii import find_pii

    rng = random.Random(0)
    for value in [v for _ in range(200) for v in textgen.pii_values(rng).values()]:
        spans = find_pii(f"Write to {value} today.")
        assert [span.end - span.start for span in spans] == [len(value)], value
    for ssn in textgen.FAKE_SSNS:
        assert find_pii(f"SSN {ssn}."), ssn


def test_redirects_and_not_found(responses):
    statuses = {}
    for entry, record, payload in responses:
        if entry["kind"] == "redirect":
            assert http_header(record, "Location") == entry["location"]
            assert len(payload) < 200
        if entry["kind"] in ("redirect", "not_found"):
            statuses[entry["status"]] = entry["kind"]
    assert statuses == {301: "redirect", 302: "redirect", 404: "not_found"}


def test_revisits_point_at_earlier_responses(manifest: dict, responses):
    originals = {e["record_id"]: (e, r) for e, r, _ in responses if e["warc_type"] == "response"}
    revisits = [(e, r) for e, r, _ in responses if e["warc_type"] == "revisit"]
    assert len(revisits) == 2
    for entry, record in revisits:
        original, original_record = originals[entry["refers_to"]["record_id"]]
        assert (
            original["url"]
            == entry["url"]
            == record.rec_headers.get_header("WARC-Refers-To-Target-URI")
        )
        assert record.rec_headers.get_header("WARC-Refers-To-Date") == entry["refers_to"]["date"]
        digest = original_record.rec_headers.get_header("WARC-Payload-Digest")
        assert record.rec_headers.get_header("WARC-Payload-Digest") == digest


# ----------------------------------------------------------------------------- duplicates


def article_paragraphs(html: str) -> list[str]:
    """Paragraphs of three sentences or more: the article body, not banners or comments."""
    return [p for p in re.findall(r"<p>([^<]+)</p>", html) if len(re.findall(r"[.?!] ", p)) >= 2]


def test_duplicates_copy_their_original(responses):
    pages = {e["url"]: (e, p.decode(e["charset"])) for e, _, p in responses if e["charset"]}
    pairs = Counter()
    for entry, html in pages.values():
        if entry["kind"] not in ("duplicate", "near_duplicate"):
            continue
        original, original_html = pages[entry["duplicate_of"]]
        assert original["group"] == entry["group"]
        assert urlsplit(original["url"]).hostname != entry["host"]
        copy_text = " ".join(article_paragraphs(html))
        original_text = " ".join(article_paragraphs(original_html))
        if entry["kind"] == "duplicate":
            assert copy_text == original_text
        else:
            similarity = textgen.jaccard(
                textgen.shingles(original_text), textgen.shingles(copy_text)
            )
            assert 0.80 <= entry["shingle_jaccard"] <= 0.95
            assert similarity == pytest.approx(entry["shingle_jaccard"], abs=0.03)
        pairs[entry["kind"]] += 1
    assert pairs["duplicate"] >= 10 and pairs["near_duplicate"] >= 10


# ----------------------------------------------------------------------------- broken records


def test_garbage_http_header_block(responses):
    [(entry, record, _)] = [x for x in responses if x[0]["kind"] == "broken:http_header"]
    assert entry["status"] is None
    assert not record.http_headers.protocol.startswith("HTTP/")
    with pytest.raises(ValueError):
        int(record.http_headers.get_statuscode())


def test_bad_chunked_encoding(crawl: Path, manifest: dict):
    [entry] = [r for r in records_of(manifest) if r["kind"] == "broken:bad_chunked"]
    name = next(f["file"] for f in manifest["files"] if entry in f["records"])
    with (crawl / name).open("rb") as stream:
        stream.seek(entry["offset"])
        record = next(iter(ArchiveIterator(stream)))
        with pytest.raises(ChunkedDataException):
            ChunkedDataReader(record.raw_stream, raise_exceptions=True).read()
    with (crawl / name).open("rb") as stream:
        stream.seek(entry["offset"])
        lenient = next(iter(ArchiveIterator(stream))).content_stream().read()
    assert re.search(rb"(?:^|\r\n)[0-9a-f]+\r\n", lenient), "chunk-size lines leak into the payload"


def test_truncated_last_record(crawl: Path, manifest: dict):
    last_file = manifest["files"][-1]
    entry = last_file["records"][-1]
    data = (crawl / last_file["file"]).read_bytes()
    assert len(data) == entry["offset"] + entry["length"]
    with pytest.raises((EOFError, zlib.error)):
        gzip.decompress(data[entry["offset"] :])
    records = list(read_records(crawl / last_file["file"]))
    assert len(records) == len(last_file["records"])
    record, payload, _ = records[-1]
    declared = int(record.rec_headers.get_header("Content-Length"))
    assert len(record.http_headers.to_bytes()) + len(payload) < declared


# ----------------------------------------------------------------------------- hosts, blocklist


def read_blocklist() -> dict[str, dict[str, list[str]]]:
    lists = {}
    for category_dir in sorted((REPO / "conf" / "blocklist").iterdir()):
        lists[category_dir.name] = {
            name: (category_dir / name).read_text().split() for name in ("domains", "urls")
        }
    return lists


def blocklist_match(url: str, lists: dict) -> tuple[str, str] | None:
    parts = urlsplit(url)
    host = parts.hostname
    for category, entries in lists.items():
        for domain in entries["domains"]:
            if host == domain:
                return category, "domain"
            if host.endswith("." + domain):
                return category, "subdomain"
        for prefix in entries["urls"]:
            if f"{host}{parts.path}".startswith(prefix):
                return category, "url"
    return None


def test_blocklist_files_parse():
    lists = read_blocklist()
    assert set(lists) == {"adult", "gambling", "malware", "phishing"}
    for entries in lists.values():
        assert entries["domains"] and entries["urls"]
        for domain in entries["domains"]:
            assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain) and domain.endswith(
                RESERVED_TLDS
            )
        for url in entries["urls"]:
            assert "://" not in url and url.split("/")[0].endswith(RESERVED_TLDS)
    for category, entries in sample_crawl.BLOCKLIST.items():
        for name in ("domains", "urls"):
            assert set(entries[name]) <= set(lists[category][name])


def test_blocklisted_pages_and_only_those_match(manifest: dict):
    lists = read_blocklist()
    matches = set()
    for entry in records_of(manifest):
        found = blocklist_match(entry["url"], lists)
        if entry["kind"].startswith("blocklisted:"):
            expected = entry["blocklist"]
            assert found == (expected["category"], expected["match"]), entry["url"]
            matches.add(found)
        else:
            assert found is None, entry["url"]
    assert {m for _, m in matches} == {"domain", "subdomain", "url"}
    assert {c for c, _ in matches} == set(lists)


def test_hosts_are_reserved_and_varied(manifest: dict):
    hosts = Counter()
    urls = [r["url"] for r in records_of(manifest)]
    for url in urls:
        host = urlsplit(url).hostname
        assert host.endswith(RESERVED_TLDS), url
        hosts[host] += 1
    assert len(urls) == len(set(urls))
    assert len(hosts) >= 30 and max(hosts.values()) >= 5
    assert any(h.startswith("www.") for h in hosts)
    assert any(urlsplit(u).netloc != urlsplit(u).netloc.lower() for u in urls)
    assert any(urlsplit(u).query for u in urls)


# ----------------------------------------------------------------------------- text quality


def test_articles_pass_gopher_style_rules():
    """Articles must survive the quality filters, so bad pages are the only ones dropped."""
    rng = random.Random(7)
    stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"}
    for _ in range(50):
        article = textgen.write_article(rng)
        assert 150 <= article.words <= 1700
        words = re.findall(r"[a-z']+", " ".join(article.paragraphs).lower())
        assert len(stop_words & set(words)) >= 2
        assert 3 <= sum(map(len, words)) / len(words) <= 10
        bigrams = Counter(zip(words, words[1:], strict=False))
        ((top, count),) = bigrams.most_common(1)
        assert count * len("".join(top)) / sum(map(len, words)) <= 0.20


def test_spam_fails_repetition_rules():
    title, paragraphs = textgen.keyword_spam(random.Random(3))
    words = " ".join(paragraphs).lower().split()
    ((top, count),) = Counter(zip(words, words[1:], strict=False)).most_common(1)
    assert count * len("".join(top)) / sum(map(len, words)) > 0.20


def test_near_duplicate_similarity_is_in_range():
    rng = random.Random(11)
    for length in (150, 150, 600, 1500):
        article = textgen.write_article(rng, length=length)
        copy, similarity = textgen.near_duplicate(article, rng)
        recomputed = textgen.jaccard(
            textgen.shingles(" ".join(article.paragraphs)),
            textgen.shingles(" ".join(copy.paragraphs)),
        )
        assert 0.80 <= similarity <= 0.95
        assert similarity == pytest.approx(recomputed)


def test_luhn():
    assert textgen.luhn_valid("4539 1488 0343 6467")
    assert not textgen.luhn_valid("4539 1488 0343 6468")


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from refinery.cli import main

    assert (
        main(["sample-crawl", "--out", str(tmp_path), "--docs", str(MIN_DOCS), "--files", "2"]) == 0
    )
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [
        "CC-SAMPLE-0-00000.warc.gz", "CC-SAMPLE-0-00001.warc.gz", "expected.json",
        "reference_articles.jsonl",
    ]  # fmt: skip
    references = (tmp_path / "reference_articles.jsonl").read_text().splitlines()
    assert len(references) == 20 and all(json.loads(r)["text"] for r in references)
    with pytest.raises(SystemExit):
        sample_crawl.main(["--out", str(tmp_path), "--docs", "3"])


def test_large_crawls_get_distinct_hosts_beyond_the_word_pairs():
    """Past the word-pair names hosts are numbered: a 7,000-doc crawl used to loop forever."""
    import random

    from curation.sample_crawl import english_sites

    sites = english_sites(random.Random(0), 3000)
    bare = {s.host.removeprefix("www.") for s in sites}
    assert len(bare) == 3000
    assert any(any(c.isdigit() for c in host) for host in bare)
