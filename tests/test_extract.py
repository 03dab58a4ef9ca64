import contextlib
import gzip
import hashlib
import io
import socket
import threading
from datetime import UTC, datetime

import pytest

from curation.config import ExtractConfig
from curation.extract import (
    document_id,
    extract_file,
    extract_record,
    host_of,
    looks_like_html,
    mime_type,
    payload_limit,
    served_charset,
    triage,
)
from curation.extractor import Extraction, ExtractorStartError
from curation.inputs import InputReadError, is_transient
from curation.warc import Record
from curation.warc import write_response_warc as write_warc

from warcs import page


def record(**overrides) -> Record:
    fields = dict(
        offset=100,
        warc_type="response",
        url="https://www.News.example:8080/a?b=1",
        record_id="<urn:uuid:1234>",
        refers_to=None,
        fetch_time=datetime(2024, 5, 1, tzinfo=UTC),
        http_status=200,
        http_statusline="200 OK",
        content_type="text/html; charset=utf-8",
        content_encoding=None,
        transfer_encoding=None,
        identified_type=None,
        payload=page("Lake"),
    )
    fields.update(overrides)
    return Record(**fields)


class FakeExtractor:
    """Returns a fixed Extraction and remembers what it was given."""

    def __init__(self, result: Extraction):
        self.result = result
        self.calls = []

    def extract(self, html, url):
        self.calls.append((html, url))
        return self.result


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"warc_type": "request"}, "record_type:request"),
        ({"warc_type": "metadata"}, "record_type:metadata"),
        ({"warc_type": "warcinfo", "url": None}, "record_type:warcinfo"),
        ({"warc_type": "revisit"}, "revisit"),
        ({"http_status": 301}, "redirect"),
        ({"http_status": 304}, "http_status:304"),
        ({"http_status": 404}, "http_status:404"),
        ({"http_status": None}, None),  # unreadable headers: an error, see below
        ({"content_type": "image/png"}, "non_html"),
        ({"content_type": "application/pdf"}, "non_html"),
        ({"content_type": "application/xhtml+xml"}, None),
        ({"content_type": None}, None),  # sniffed from the payload later
        ({"content_type": None, "identified_type": "image/jpeg"}, "non_html"),
        ({"url": "dns:www.example.com"}, "non_http"),
        ({"warc_type": "resource", "http_status": None}, None),
        ({"warc_type": "conversion", "content_type": "text/plain", "http_status": None}, None),
    ],
)
def test_triage(overrides, reason):
    assert triage(record(**overrides)) == reason


def test_payload_is_read_only_when_needed():
    config = ExtractConfig(max_html_bytes=1000)
    assert payload_limit(record(), config) == 1001
    assert payload_limit(record(content_type="image/png"), config) == 0


def test_document_ids_are_stable_and_unique_per_record():
    response = record(record_id="<urn:uuid:abc>")
    wet = record(warc_type="conversion", record_id="<urn:uuid:other>", refers_to="<urn:uuid:abc>")
    assert document_id(response, "x.warc.gz") == hashlib.sha1(b"<urn:uuid:abc>").hexdigest()
    assert document_id(response, "/elsewhere/x.warc.gz") == document_id(response, "x.warc.gz")
    # the same capture at another place of another file (WARCs cut differently): the same id
    moved = record(record_id="<urn:uuid:abc>", offset=2048)
    assert document_id(moved, "y.warc.gz") == document_id(response, "x.warc.gz")
    # the WET text of the same capture is another document (ids are unique; dedup sees the URL)
    assert document_id(wet, "x.wet.gz") == hashlib.sha1(b"<urn:uuid:other>").hexdigest()
    # wget repeats a WARC-Record-ID on several records of a file: the repeat tells them apart
    assert (
        document_id(moved, "x.warc.gz", repeat=1) == hashlib.sha1(b"<urn:uuid:abc>#1").hexdigest()
    )
    arc = record(from_arc=True, record_id="<urn:uuid:random>")
    when = arc.fetch_time.isoformat() if arc.fetch_time else ""
    key = f"a.arc.gz@100 {arc.url} {when}".encode()
    assert document_id(arc, "/data/a.arc.gz") == hashlib.sha1(key).hexdigest()
    # a file of the same name in another folder, another page at the same offset
    other = record(from_arc=True, url="http://beta.example.net/report")
    assert document_id(other, "/data/2009/a.arc.gz") != document_id(arc, "/data/2008/a.arc.gz")
    assert document_id(arc, "/data/2009/a.arc.gz") == document_id(arc, "/data/2008/a.arc.gz")


def test_host_and_sniffing():
    assert host_of("https://www.News.example:8080/a") == "www.news.example"
    assert host_of("not a url") is None
    assert looks_like_html(b"  <!DOCTYPE html><html>")
    assert not looks_like_html(b"\x89PNG\r\n")
    # WHATWG's HTML starts, after a UTF-8 byte-order mark too; a tag name must end there
    for start in (b"\xef\xbb\xbf<!DOCTYPE html>", b"<title>x</title><p>hi", b"<TABLE><tr>"):
        assert looks_like_html(start), start
    assert not looks_like_html(b"<abbr>") and not looks_like_html(b"Dear <b>")


def test_mime_type_takes_the_last_of_several_values():
    assert mime_type("text/html; charset=UTF-8") == "text/html"
    assert mime_type("text/plain, text/html") == "text/html"  # two headers joined so
    assert mime_type("text/html, */*") == "text/html"
    assert mime_type("html") is None and mime_type(None) is None
    assert mime_type('text/html; charset=utf-8; profile="a, b/c"') == "text/html"  # quoted


def test_the_charset_is_the_served_type_s():
    """As Fetch keeps it: across the values of the last type, reset by another type."""
    assert served_charset("text/html; charset=windows-1251, text/html; charset=koi8-r") == "koi8-r"
    assert served_charset("text/html; charset=koi8-r, text/html") == "koi8-r"
    assert served_charset("text/plain; charset=koi8-r, text/html") is None
    assert served_charset('text/html; charset="utf-8"') == "utf-8"


def test_kept_record_has_the_document_columns():
    extractor = FakeExtractor(Extraction("ok", text="  Lake text.  "))
    row = extract_record(record(), "s.warc.gz", ExtractConfig(), extractor)
    assert row["outcome"] == "kept"
    assert row["text"] == "Lake text."
    assert row["host"] == "www.news.example"
    assert row["charset"] == "utf-8"
    assert row["html_bytes"] == len(page("Lake"))
    assert row["source"] == "s.warc.gz" and row["offset"] == 100
    assert extractor.calls[0][1] == "https://www.News.example:8080/a?b=1"


def test_encoded_chunked_payload_is_decoded_before_extraction():
    body = gzip.compress(page("Lake"))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    rec = record(payload=chunked, content_encoding="gzip", transfer_encoding="chunked")
    extractor = FakeExtractor(Extraction("ok", text="t"))
    assert extract_record(rec, "s", ExtractConfig(), extractor)["outcome"] == "kept"
    assert "<title>Lake</title>" in extractor.calls[0][0]


@pytest.mark.parametrize(
    ("overrides", "result", "outcome", "reason"),
    [
        ({"payload": b"x" * 2001}, None, "rejected", "too_large"),
        (
            {"payload": gzip.compress(b"<p>" + b"a" * 5000), "content_encoding": "gzip"},
            None,
            "rejected",
            "too_large",
        ),
        ({}, Extraction("timeout"), "rejected", "extract_timeout"),
        ({}, Extraction("ok", text="   "), "rejected", "empty_extraction"),
        ({}, Extraction("ok", text=None), "rejected", "empty_extraction"),
        ({"content_type": None, "payload": b"%PDF-1.4 ..."}, None, "rejected", "non_html"),
        # the crawler identified it as HTML: no sniffing (DataTrove trusts it too)
        (
            {"content_type": None, "identified_type": "text/html", "payload": b"Hello <div>"},
            Extraction("ok", text="Hello"),
            "kept",
            None,
        ),
        ({"payload": b"5\r\nabcdeXX", "transfer_encoding": "chunked"}, None, "error", None),
        ({}, Extraction("error", message="boom"), "error", None),
        ({"http_status": None, "http_statusline": "garbage"}, None, "error", None),
    ],
)
def test_rejections_and_errors(overrides, result, outcome, reason):
    extractor = FakeExtractor(result)
    row = extract_record(record(**overrides), "s", ExtractConfig(max_html_bytes=2000), extractor)
    assert (row["outcome"], row["reason"]) == (outcome, reason)
    if outcome == "error":
        assert row["error"]


@pytest.mark.parametrize(
    ("statusline", "message"),
    [("garbage", "status line 'garbage'"), (None, "no HTTP status line (an empty block?)")],
)
def test_bad_http_headers_say_what_was_there(statusline, message):
    rec = record(http_status=None, http_statusline=statusline)
    row = extract_record(rec, "s", ExtractConfig(), FakeExtractor(None))
    assert row["error"] == f"bad HTTP headers: {message}"


def test_a_page_with_a_charset_python_cannot_decode_is_kept():
    extractor = FakeExtractor(Extraction("ok", text="t"))
    rec = record(content_type="text/html; charset=undefined", payload="<p>Café</p>".encode())
    row = extract_record(rec, "s", ExtractConfig(), extractor)
    assert (row["outcome"], row["charset"]) == ("kept", "utf-8")


def test_an_undeclared_legacy_page_is_decoded_in_its_country_s_latin_code():
    extractor = FakeExtractor(Extraction("ok", text="t"))
    html = "<p>A câmara reuniu-se na terça-feira para discutir o orçamento.</p>"
    rec = record(
        url="http://www.jornal.com.br/", content_type="text/html", payload=html.encode("cp1252")
    )
    row = extract_record(rec, "s", ExtractConfig(), extractor)
    assert (row["charset"], extractor.calls[0][0]) == ("cp1252", html)  # not windows-1250's ă


def test_wet_conversion_text_is_kept_without_extraction():
    rec = record(
        warc_type="conversion",
        http_status=None,
        content_type="text/plain",
        payload="Grüße\n".encode(),
    )
    extractor = FakeExtractor(None)
    row = extract_record(rec, "s.wet.gz", ExtractConfig(), extractor)
    assert (row["outcome"], row["text"]) == ("kept", "Grüße")
    assert extractor.calls == []


def test_extract_file_accounts_for_every_record(tmp_path):
    path = tmp_path / "mixed.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(3)])
    data = bytearray(path.read_bytes())
    for i in range(offsets[1] + 40, offsets[1] + 80):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    rows = list(extract_file(str(path), ExtractConfig(), FakeExtractor(Extraction("ok", text="t"))))
    assert [r["outcome"] for r in rows] == ["kept", "error", "kept"]
    assert rows[1]["offset"] == offsets[1] and rows[1]["source"] == str(path)
    missing = list(extract_file(str(tmp_path / "gone.warc.gz"), ExtractConfig(), None))
    assert len(missing) == 1 and missing[0]["outcome"] == "error"
    assert "cannot open" in missing[0]["error"]


def test_a_page_over_the_cap_reports_its_whole_size(tmp_path):
    path = tmp_path / "big.warc.gz"
    big, small = page("t", 400), page("s", 5)
    write_warc(path, [("https://site.example/big", big), ("https://site.example/s", small)])
    config = ExtractConfig(max_html_bytes=len(big) // 3)
    rows = list(extract_file(str(path), config, FakeExtractor(Extraction("ok", text="t"))))
    assert [(r["outcome"], r["reason"]) for r in rows] == [
        ("rejected", "too_large"),
        ("kept", None),
    ]
    assert rows[0]["html_bytes"] == len(big)  # not the cap + 1 bytes read of it


def test_ids_follow_the_record_not_its_file_and_repeats_in_a_file_stay_apart(tmp_path):
    """The same records written twice into one file (wget repeats ids) get `#1` ids; the
    same records in another file, at other offsets, keep their ids."""
    alone = tmp_path / "alone.warc.gz"
    write_warc(alone, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(3)])
    padded = tmp_path / "padded.warc.gz"
    write_warc(padded, [("https://other.example/", page("x", 20))])
    padded.write_bytes(padded.read_bytes() + alone.read_bytes())  # the 3 at other offsets
    twice = tmp_path / "twice.warc.gz"
    twice.write_bytes(alone.read_bytes() * 2)
    extractor = FakeExtractor(Extraction("ok", text="t"))

    def ids(path):
        return [row["id"] for row in extract_file(str(path), ExtractConfig(), extractor)]

    first = ids(alone)
    assert ids(padded)[1:] == first
    doubled = ids(twice)
    assert doubled[:3] == first and len(set(doubled)) == 6


class ExtractorFailingOn(FakeExtractor):
    """Raises, as no extractor should, for one URL."""

    def __init__(self, url: str):
        super().__init__(Extraction("ok", text="t"))
        self.url = url

    def extract(self, html, url):
        if url == self.url:
            raise RuntimeError("surprise")
        return super().extract(html, url)


def test_a_record_that_raises_is_an_error_row_and_the_file_goes_on(tmp_path):
    path = tmp_path / "three.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(3)])
    extractor = ExtractorFailingOn("https://site.example/1")
    rows = list(extract_file(str(path), ExtractConfig(), extractor))
    assert [r["outcome"] for r in rows] == ["kept", "error", "kept"]
    assert (rows[1]["source"], rows[1]["offset"]) == (str(path), offsets[1])
    assert rows[1]["error"] == "unexpected RuntimeError: surprise"


class ExtractorThatCannotStart(FakeExtractor):
    def extract(self, html, url):
        raise ExtractorStartError("extraction process for x:y exited while starting")


def test_an_extractor_that_cannot_start_fails_the_task_not_each_record(tmp_path):
    path = tmp_path / "two.warc.gz"
    write_warc(path, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(2)])
    with pytest.raises(ExtractorStartError, match="exited while starting"):
        list(extract_file(str(path), ExtractConfig(), ExtractorThatCannotStart(None)))


class ResetAfter(io.RawIOBase):
    """An S3 body: read-only, not seekable, and its connection resets after `limit` bytes."""

    def __init__(self, data: bytes, limit: int):
        self.data, self.limit, self.at = data, limit, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.at >= len(self.data):
            return 0
        if self.at >= self.limit:
            raise ConnectionResetError(104, "Connection reset by peer")
        n = min(len(buffer), self.limit - self.at)
        buffer[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


class ResetAgainOnClose(ResetAfter):
    """Closing the connection that just failed raises the network error again (once)."""

    def close(self):
        if not self.closed:
            super().close()
            raise ConnectionResetError(104, "Connection reset by peer")


def test_a_connection_reset_mid_file_reads_on_from_a_new_connection(tmp_path, monkeypatch):
    """An error row stood for the rest of the file, lost: a non-seekable S3 stream cannot
    resync. The file is opened again and read on past the records already given."""
    import curation.extract as extract

    path = tmp_path / "five.warc.gz"
    urls = [f"https://site.example/{i}" for i in range(5)]
    offsets = write_warc(path, [(url, page(f"t{i}", 20)) for i, url in enumerate(urls)])
    data = path.read_bytes()
    streams = iter([ResetAgainOnClose(data, offsets[3] - 10), ResetAfter(data, len(data))])
    monkeypatch.setattr(extract, "open_input", lambda _: next(streams))
    monkeypatch.setattr(extract, "READ_RETRY_SECONDS", 0.0)
    fake = FakeExtractor(Extraction("ok", text="t"))
    rows = list(extract_file("s3://bucket/five.warc.gz", ExtractConfig(), fake))
    assert [r["url"] for r in rows] == urls and {r["outcome"] for r in rows} == {"kept"}
    assert len({r["id"] for r in rows}) == 5  # none given twice, none taken as a repeat


@contextlib.contextmanager
def serving(data: bytes, cut_first: int):
    """A local HTTP server of `data` that announces its whole length but closes the first
    connection after `cut_first` bytes, as a server restarting mid-transfer does."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:cut_first] if len(requests) == 1 else data)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/five.warc.gz", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("cut", ["between records", "inside a record"])
def test_an_http_body_cut_short_is_read_again_not_taken_for_the_file_s_end(
    tmp_path, monkeypatch, cut
):
    """http.client's read returns b"" when the server closes before its Content-Length: the
    records after the cut were lost unsaid (or the cut record was an error row, as damage)."""
    import curation.extract as extract

    path = tmp_path / "five.warc.gz"
    urls = [f"https://site.example/{i}" for i in range(5)]
    offsets = write_warc(path, [(url, page(f"t{i}", 20)) for i, url in enumerate(urls)])
    data = path.read_bytes()
    at = offsets[2] if cut == "between records" else offsets[2] + 40
    monkeypatch.setattr(extract, "READ_RETRY_SECONDS", 0.0)
    fake = FakeExtractor(Extraction("ok", text="t"))
    with serving(data, at) as (url, requests):
        rows = list(extract_file(url, ExtractConfig(), fake))
    assert [r["url"] for r in rows] == urls and {r["outcome"] for r in rows} == {"kept"}
    assert len(requests) == 2


def test_a_manifest_cut_short_or_a_line_no_server_takes_is_said_not_retried():
    """A manifest body cut short was a bare IncompleteRead traceback; a URL http.client
    refuses (a line with a space and a comment) was retried 5 times as a network failure and
    then failed the stage."""
    import http.client

    from curation.inputs import InputError, resolve_inputs

    manifest = gzip.compress(b"crawl-data/a.warc.gz\ncrawl-data/b.warc.gz\n")
    cut_short = pytest.raises(InputError, match="cannot read input manifest .*IncompleteRead")
    with serving(manifest, 10) as (url, _), cut_short:
        resolve_inputs([url.replace("five.warc.gz", "warc.paths.gz")], "https://x.example")
    assert not is_transient(http.client.InvalidURL("URL can't contain control characters"))
    assert is_transient(http.client.IncompleteRead(b"", 9))


def test_a_file_the_network_keeps_failing_fails_the_task_for_spark_to_retry(tmp_path, monkeypatch):
    import curation.extract as extract

    path = tmp_path / "five.warc.gz"
    offsets = write_warc(path, [(f"https://s.example/{i}", page(f"t{i}", 20)) for i in range(5)])
    data = path.read_bytes()
    source = "s3://bucket/five.warc.gz"
    monkeypatch.setattr(extract, "READ_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(extract, "open_input", lambda _: ResetAfter(data, offsets[3] - 10))
    rows = []
    message = rf"{source}: reading failed after offset \d+: ConnectionResetError.*; 5 attempts"
    with pytest.raises(InputReadError, match=message):
        for row in extract_file(source, ExtractConfig(), FakeExtractor(Extraction("ok", text="t"))):
            rows.append(row)
    assert [r["outcome"] for r in rows] == ["kept"] * len(rows) and 1 <= len(rows) <= 3

    def refused(_):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(extract, "open_input", refused)
    with pytest.raises(InputReadError, match=rf"{source}: cannot open: ConnectionRefusedError"):
        list(extract_file(source, ExtractConfig(), None))


def test_network_failures_are_told_from_damaged_files():
    import urllib.error
    import zlib

    from warcio.exceptions import ArchiveLoadFailed

    def boto(name: str, status: int | None = None) -> Exception:
        cls = type(name, (Exception,), {"__module__": "botocore.exceptions"})
        err = cls("x")
        if status:
            err.response = {"ResponseMetadata": {"HTTPStatusCode": status}}
        return err

    def refused_certificate() -> Exception:
        """What urllib3 raises (its SSLError counts as a network failure) for a bad certificate."""
        import ssl

        from urllib3.exceptions import SSLError

        try:
            try:
                raise ssl.SSLCertVerificationError(1, "certificate verify failed")
            except ssl.SSLError as cause:
                raise SSLError(cause) from cause
        except SSLError as err:
            return err

    try:
        try:
            raise ConnectionResetError(104, "reset")
        except OSError:
            raise ArchiveLoadFailed("Unknown archive format") from None
    except ArchiveLoadFailed as wrapped:  # `from None` keeps the reset as its context
        assert is_transient(wrapped)
    for err in (
        TimeoutError(),
        urllib.error.URLError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name")),
        urllib.error.HTTPError("u", 503, "Slow Down", {}, None),
        boto("ResponseStreamingError"),
        boto("ClientError", 500),
    ):
        assert is_transient(err), err
    for err in (
        zlib.error("invalid stored block lengths"),
        gzip.BadGzipFile("Not a gzipped file"),
        EOFError("Compressed file ended before the end-of-stream marker"),
        urllib.error.HTTPError("u", 404, "Not Found", {}, None),
        urllib.error.URLError(FileNotFoundError(2, "No such file")),
        urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
        boto("ClientError", 404),
        boto("NoCredentialsError"),
        refused_certificate(),
    ):
        assert not is_transient(err), err
