import gzip
import io
import time
import zlib
from pathlib import Path

import pytest

from curation.warc import ReadError, Record, iter_records, parse_warc_date
from curation.warc import write_response_warc as write_warc

from conftest import shared_data
from warcs import page

READ_ALL = lambda record: 10_000_000  # noqa: E731


def read(path: Path, limit=READ_ALL):
    with open(path, "rb") as stream:
        return list(iter_records(stream, limit))


def test_records_have_offsets_headers_and_payloads(tmp_path: Path):
    path = tmp_path / "ok.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(3)])
    items = read(path)
    assert [r.offset for r in items] == offsets
    first = items[0]
    assert isinstance(first, Record)
    assert first.warc_type == "response"
    assert first.url == "https://site.example/0"
    assert first.http_status == 200
    assert first.content_type == "text/html; charset=utf-8"
    assert first.record_id.startswith("<urn:uuid:")
    assert first.fetch_time.isoformat() == "2024-05-01T12:00:00+00:00"
    assert first.payload == page("t0")


def test_payload_limit_zero_skips_payload(tmp_path: Path):
    path = tmp_path / "ok.warc.gz"
    write_warc(path, [("https://site.example/", page("x"))])
    (record,) = read(path, lambda record: 0)
    assert record.payload is None
    (record,) = read(path, lambda record: 10)
    assert record.payload == page("x")[:10]


def test_corrupt_member_in_the_middle_is_one_error_and_reading_goes_on(tmp_path: Path):
    path = tmp_path / "mid.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(3)])
    data = bytearray(path.read_bytes())
    for i in range(offsets[1] + 40, offsets[1] + 80):  # garble the deflate stream of record 2
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    items = read(path)
    assert [type(r).__name__ for r in items] == ["Record", "ReadError", "Record"]
    assert items[1].offset == offsets[1]
    assert items[2].offset == offsets[2] and items[2].payload == page("t2", 20)
    # warcio called it "Unknown archive format" and quoted 1,000 compressed bytes
    assert items[1].error.startswith("corrupt gzip member: its compressed data does not inflate")


def test_damage_in_a_stream_that_cannot_seek_says_reading_stops_there(tmp_path: Path):
    """Over http or S3 the reader cannot look past the damage: the records after it went
    unread, and the error row did not say so (README said the task resyncs)."""
    import io

    class Remote(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self.data.readinto(buffer)

    path = tmp_path / "mid.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(3)])
    data = bytearray(path.read_bytes())
    for i in range(offsets[1] + 40, offsets[1] + 80):
        data[i] ^= 0x5A
    items = list(iter_records(Remote(bytes(data)), READ_ALL))
    assert [type(r).__name__ for r in items] == ["Record", "ReadError"]
    assert items[1].error.endswith(
        "; reading stops here: a remote stream cannot seek past damage (copy the file locally "
        "to read any records after it)"
    )


def test_a_corrupt_first_member_loses_only_its_record(tmp_path: Path):
    """It made the whole file "not a WARC/ARC file": one error row, the other records unread."""
    path = tmp_path / "first.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(3)])
    data = bytearray(path.read_bytes())
    for i in range(40, 80):  # garble the deflate stream of record 1
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    items = read(path)
    assert kinds(items) == ["ReadError", "Record", "Record"]
    assert items[0].offset == 0 and items[0].error.startswith("corrupt gzip member")
    assert [r.offset for r in items[1:]] == offsets[1:]


def test_truncated_last_member_is_an_error(tmp_path: Path):
    path = tmp_path / "trunc.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(2)])
    data = path.read_bytes()
    path.write_bytes(data[: offsets[1] + (len(data) - offsets[1]) // 2])
    items = read(path)
    assert isinstance(items[0], Record)
    assert isinstance(items[1], ReadError) and items[1].offset == offsets[1]
    assert len(items) == 2


def test_truncated_uncompressed_record_is_an_error(tmp_path: Path):
    path = tmp_path / "trunc.warc"
    offsets = write_warc(
        path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(2)], gzip=False
    )
    data = path.read_bytes()
    path.write_bytes(data[: offsets[1] + 600])
    items = read(path)
    assert isinstance(items[0], Record) and items[0].payload == page("t0", 20)
    assert isinstance(items[1], ReadError)
    assert items[1].offset == offsets[1]
    assert "truncated" in items[1].error


def test_a_last_record_cut_where_warcio_stops_silently_is_one_error(tmp_path: Path):
    # the tail was said from the blank line before the record, and then again from the
    # record: two error rows, and an input count of one too many, for one damaged record
    path = tmp_path / "cut.warc"
    offsets = write_warc(
        path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(2)], gzip=False
    )
    path.write_bytes(path.read_bytes()[: offsets[1] + 200])
    items = read(path)
    assert kinds(items) == ["Record", "ReadError"] and items[1].offset == offsets[1]
    assert items[1].error.startswith("200 bytes after the last complete record")


@pytest.mark.parametrize("tail", [b"\n\n", b"\r\n", b"\n\r\n\0\0"])
def test_blank_lines_after_a_gzipped_member_are_no_record(tmp_path: Path, tail):
    path = tmp_path / "padded.warc.gz"
    write_warc(path, [(f"https://site.example/{i}", page(f"t{i}", 20)) for i in range(2)])
    clean = path.read_bytes()
    path.write_bytes(clean + tail)  # warcio read them as a record without a WARC-Type
    assert kinds(read(path)) == ["Record", "Record"]
    path.write_bytes(clean + tail + b"WARC/1.0\r\nContent-Length: 5\r\n")  # but not more
    assert kinds(read(path)) == ["Record", "Record", "ReadError"]
    path.write_bytes(clean + tail + clean)  # nor between members: the next one was lost
    assert kinds(read(path)) == ["Record"] * 4
    path.write_bytes(clean + tail + b"\0" * (2 << 20) + clean)  # padding past one window
    assert kinds(read(path)) == ["Record"] * 4
    path.write_bytes(clean + tail + gzip.compress(b""))  # and a writer's closing member
    assert kinds(read(path)) == ["Record", "Record"]


def test_a_header_cut_short_says_so_not_only_what_warcio_raised(tmp_path: Path):
    path = tmp_path / "cut.warc.gz"
    stream = zlib.compressobj(wbits=31)  # a gzip member that ends inside the WARC headers
    head = b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 100\r\nContent-Type: appl"
    path.write_bytes(stream.compress(head) + stream.flush(zlib.Z_SYNC_FLUSH))
    (item,) = read(path)
    assert isinstance(item, ReadError) and item.offset == 0
    assert item.error.startswith("no WARC-Target-URI: record headers without one or cut short")


@pytest.mark.parametrize("header", [b"WARC-Record-ID: <", b"Z\r\n"])
def test_a_file_that_ends_inside_a_record_s_headers_is_said_to_be_cut(tmp_path: Path, header):
    path = tmp_path / "cut.warc"
    data, offsets = uncompressed(path, 2)
    record = data[offsets[1] :]
    # the last record's headers end in the middle: the record lacks its type or its length
    path.write_bytes(data[: offsets[1]] + record[: record.index(header) + len(header)])
    items = read(path)
    assert kinds(items) == ["Record", "ReadError"] and items[1].offset == offsets[1]
    assert items[1].error == (
        "TruncatedRecord: the file ends inside a record's headers: it is cut short"
    )


def test_garbage_file_gives_one_error(tmp_path: Path):
    path = tmp_path / "junk.warc"
    path.write_bytes(b"this is not a warc file\n" * 10)
    items = read(path)
    assert len(items) == 1 and isinstance(items[0], ReadError) and items[0].offset == 0


def test_a_gzipped_file_that_is_no_warc_is_quoted_decompressed(tmp_path: Path):
    """The message quoted the compressed bytes: gzipped JSON read as b'\\x1f\\x8b\\x08...'."""
    import gzip

    path = tmp_path / "data.warc.gz"
    line = b'{"text": "a JSON line, not a WARC record"}\n'
    path.write_bytes(gzip.compress(line))
    (item,) = read(path)
    assert item.error == f"not a WARC/ARC file: gzipped, starts with {line[:40]!r}"
    path.write_bytes(b"\x1f\x8b\x01 damaged")
    (item,) = read(path)
    assert item.error == "not a WARC/ARC file: starts with b'\\x1f\\x8b\\x01 damaged'"


def test_an_empty_gzip_member_first_or_last_hides_nothing_and_is_no_error(tmp_path: Path):
    """A writer's empty first member made the file "not a WARC": its records went unread; an
    empty last one was an error row of "bytes ... could not be read (truncated?)"."""
    import gzip

    path = tmp_path / "ok.warc.gz"
    offsets = write_warc(path, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(3)])
    empty = gzip.compress(b"")
    path.write_bytes(empty + path.read_bytes())
    items = read(path)
    assert kinds(items) == ["Record"] * 3
    # warcio counts the empty member into the first record's
    assert [r.offset for r in items] == [0] + [o + len(empty) for o in offsets[1:]]
    path.write_bytes(path.read_bytes()[len(empty) :] + empty)  # and after the last: no error
    assert kinds(read(path)) == ["Record"] * 3


def test_uncompressed_warc_0_17_resyncs_after_a_damaged_record(tmp_path: Path):
    # old crawls (e.g. Heritrix 1) wrote WARC/0.17; after damage the next record must be found
    path = tmp_path / "old.warc"
    write_warc(path, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(3)], gzip=False)
    data = path.read_bytes().replace(b"WARC/1.0\r\n", b"WARC/0.17\r\n")
    second = data.index(b"WARC/0.17", 1)
    path.write_bytes(data[:second] + b"XXXX" + data[second + 4 :])  # damage record 2's "WARC"
    items = read(path)
    assert [type(r).__name__ for r in items] == ["Record", "ReadError", "Record"]
    assert items[1].offset == second
    assert items[2].url == "https://site.example/2" and items[2].payload == page("t2")


def test_parse_warc_date():
    assert parse_warc_date("2024-05-01T12:00:00.123456Z").microsecond == 123456
    assert parse_warc_date("not a date") is None
    assert parse_warc_date(None) is None
    assert parse_warc_date("20240501120000").isoformat() == "2024-05-01T12:00:00+00:00"  # ARC's
    assert parse_warc_date("20241399120000") is None


@pytest.fixture
def tz_five_hours_west(monkeypatch):
    """The process's local time zone set to UTC-5 (a POSIX rule: needs no tz database)."""
    monkeypatch.setenv("TZ", "XST+05")
    time.tzset()
    assert time.timezone == 5 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_warc_date_without_a_zone_is_utc_not_local_time(tz_five_hours_west):
    assert parse_warc_date("2024-05-01T12:00:00").isoformat() == "2024-05-01T12:00:00+00:00"
    assert parse_warc_date("2024-05-01T12:00:00+02:00").isoformat() == "2024-05-01T10:00:00+00:00"


def write_arc(path: Path, pages: list[tuple[str, bytes]]) -> None:
    """An ARC v1 file: its version block, then one record per (url, HTTP response)."""

    def record(header: str, body: bytes) -> bytes:
        return f"{header} {len(body)}\n".encode() + body + b"\n"

    version = b"1 0 Test\nURL IP-address Archive-date Content-type Archive-length\n\n"
    parts = [record("filedesc://test.arc 0.0.0.0 20240501120000 text/plain", version)]
    for url, html in pages:
        http = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + html
        parts.append(record(f"{url} 192.0.2.1 20240501120000 text/html", http))
    path.write_bytes(b"".join(parts))


def test_arc_records_say_they_came_from_arc(tmp_path: Path):
    # warcio converts ARC records to WARC ones with random record ids; the extract stage must
    # know, to key their documents by file and offset instead
    path = tmp_path / "old.arc"
    write_arc(path, [("http://site.example/a", page("a")), ("http://site.example/b", page("b"))])
    items = read(path)
    assert [r.warc_type for r in items] == ["warcinfo", "response", "response"]
    assert all(r.from_arc for r in items)
    assert items[1].payload == page("a") and items[1].url == "http://site.example/a"
    assert [r.record_id for r in read(path)] != [r.record_id for r in items]  # random each read
    warc = tmp_path / "new.warc.gz"
    write_warc(warc, [("https://site.example/", page("x"))])
    assert not any(r.from_arc for r in read(warc))


def test_a_file_gzipped_whole_yields_every_record(tmp_path: Path):
    # `gzip x.warc` makes one gzip member, which warcio refuses after the first record
    import gzip

    per_record = tmp_path / "ok.warc.gz"
    write_warc(per_record, [(f"https://site.example/{i}", page(f"t{i}")) for i in range(4)])
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(gzip.decompress(per_record.read_bytes())))
    expected, got = read(per_record), read(whole)
    assert len(got) == 4 and all(isinstance(r, Record) for r in got)
    assert [(r.record_id, r.payload) for r in got] == [(r.record_id, r.payload) for r in expected]
    assert got[0].offset == 0 and got[1].offset > 0  # decompressed offsets


def kinds(items) -> list[str]:
    return [type(r).__name__ for r in items]


def uncompressed(path: Path, n: int, words: int = 20) -> tuple[bytes, list[int]]:
    pages = [(f"https://site.example/{i}", page(f"t{i}", words)) for i in range(n)]
    offsets = write_warc(path, pages, gzip=False)
    return path.read_bytes(), offsets


def second_record_damaged(path: Path, n: int, damage) -> tuple[list, list[int]]:
    """Read an uncompressed file of `n` records whose second is `damage(record bytes)`."""
    data, offsets = uncompressed(path, n)
    path.write_bytes(
        data[: offsets[1]] + damage(data[offsets[1] : offsets[2]]) + data[offsets[2] :]
    )
    return read(path), offsets


def test_a_file_gzipped_whole_and_cut_short_keeps_every_complete_record(tmp_path: Path):
    """GzipFile's EOFError dropped what it had decompressed and warcio took it for the end of
    the file: 3 records cut in the third gave 1 record and no error."""
    import gzip

    data, _ = uncompressed(tmp_path / "plain.warc", 3)
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(data)[:-40])
    items = read(whole)
    assert kinds(items) == ["Record", "Record", "ReadError"]
    assert [r.payload for r in items[:2]] == [page("t0", 20), page("t1", 20)]
    assert "gzip stream cut short" in items[2].error
    padded = tmp_path / "padded.warc.gz"  # zero padding after the member is no record
    padded.write_bytes(gzip.compress(data) + b"\0" * 64)
    assert kinds(read(padded)) == ["Record"] * 3


def test_a_file_gzipped_whole_and_damaged_midway_keeps_the_records_before(tmp_path: Path):
    """The check for a member that stops inflating took the whole file's one member for a
    damaged first record: 0 records instead of those before the damage."""
    import gzip
    import random

    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghij", k=6)) for _ in range(5000)]
    pages = [
        (f"https://site.example/{i}", " ".join(rng.choices(words, k=3000)).encode())
        for i in range(12)
    ]
    write_warc(tmp_path / "plain.warc", pages, gzip=False)
    data = bytearray(gzip.compress((tmp_path / "plain.warc").read_bytes()))
    data[len(data) // 2 : len(data) // 2 + 512] = bytes(512)
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(bytes(data))
    items = read(path)
    records = [r for r in items if isinstance(r, Record)]
    assert 3 <= len(records) < 12 and isinstance(items[-1], ReadError)
    # (a member's check sum comes at its end: in one member for the whole file, the record
    # the damage is in may come out garbled before the error)
    assert [r.payload for r in records[:3]] == [body for _, body in pages[:3]]
    # the records after the damage are not read, and the error row says so
    assert items[-1].error.endswith(
        "; reading stops here: the file is gzipped whole, one member, which cannot be searched "
        "past damage (`warcio recompress` gives each record its own)"
    )


def test_a_content_length_too_small_is_an_error_not_a_cut_text(tmp_path: Path, capsys):
    def shorter(record: bytes) -> bytes:
        length = int(record.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        return record.replace(
            b"Content-Length: %d" % length, b"Content-Length: %d" % (length - 200)
        )

    items, offsets = second_record_damaged(tmp_path / "short.warc", 3, shorter)
    assert kinds(items) == ["Record", "ReadError", "Record"]
    assert items[1].offset == offsets[1] and "Content-Length does not end" in items[1].error
    assert items[2].url == "https://site.example/2" and items[2].payload == page("t2", 20)
    assert "not followed by newline" not in capsys.readouterr().err  # warcio's, no file named


def test_a_record_without_a_content_length_does_not_swallow_the_next_ones(tmp_path: Path):
    def without_length(record: bytes) -> bytes:
        start = record.index(b"Content-Length: ")
        return record[:start] + record[record.index(b"\r\n", start) + 2 :]

    items, _ = second_record_damaged(tmp_path / "nolength.warc", 4, without_length)
    assert kinds(items) == ["Record", "ReadError", "Record", "Record"]
    assert "without a Content-Length" in items[1].error
    assert [r.url for r in items[2:]] == ["https://site.example/2", "https://site.example/3"]


def test_a_header_block_cut_short_does_not_swallow_the_next_record(tmp_path: Path):
    def cut_in_its_headers(record: bytes) -> bytes:
        return record[: record.index(b"WARC-Type: ") + 12] + b"\r\n"

    items, offsets = second_record_damaged(tmp_path / "cut.warc", 3, cut_in_its_headers)
    assert kinds(items) == ["Record", "ReadError", "Record"]
    assert items[1].offset == offsets[1] and "WARC-Type twice" in items[1].error
    assert items[2].url == "https://site.example/2" and items[2].payload == page("t2", 20)


def test_a_typeless_empty_record_in_mid_file_is_no_cut(tmp_path: Path):
    def typeless_and_empty(record: bytes) -> bytes:
        head = record[: record.index(b"\r\n\r\n")].split(b"\r\n")
        head = [h for h in head if not h.startswith((b"WARC-Type", b"Content-Length"))]
        return b"\r\n".join([*head, b"Content-Length: 0"]) + b"\r\n\r\n\r\n\r\n"

    items, _ = second_record_damaged(tmp_path / "typeless.warc", 3, typeless_and_empty)
    assert kinds(items) == ["Record", "ReadError", "Record"]
    assert items[1].error == "BadRecordHeaders: record without a WARC-Type"


def test_blank_lines_before_the_first_record_are_skipped(tmp_path: Path):
    path = tmp_path / "blank.warc"
    data, offsets = uncompressed(path, 3)
    for blank in (b"\r\n", b"\r\n" * 5000):  # 16 bytes of them were skipped, no more
        path.write_bytes(blank + data)
        items = read(path)
        assert kinds(items) == ["Record"] * 3
        assert [r.offset for r in items] == [o + len(blank) for o in offsets]


def test_an_http_status_out_of_range_is_no_status(tmp_path: Path):
    path = tmp_path / "status.warc"
    data, _ = uncompressed(path, 1)
    path.write_bytes(data.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 9999 K"))
    (record,) = read(path)
    assert record.http_status is None


def test_a_repeated_content_type_keeps_every_value(tmp_path: Path):
    """Joined as HTTP combines fields: the Fetch standard takes the last type that parses."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "two.warc.gz"
    types = [("Content-Type", "text/plain"), ("content-type", "text/html")]
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", types, protocol="HTTP/1.1")
        payload = io.BytesIO(page("two types"))
        url = "https://site.example/"
        writer.write_record(writer.create_warc_record(url, "response", payload, http_headers=http))
    (record,) = read(path)
    assert record.content_type == "text/plain, text/html"


def test_an_uncompressed_arc_resyncs_after_a_damaged_length(tmp_path: Path):
    path = tmp_path / "damaged.arc"
    pages = [(f"http://site.example/{i}", page(f"p{i}")) for i in range(4)]
    write_arc(path, pages)
    data = path.read_bytes()
    line_start = data.index(b"http://site.example/1 ")
    line_end = data.index(b"\n", line_start)
    header = data[line_start:line_end].rsplit(b" ", 1)
    longer = header[0] + b" %d" % (int(header[1]) + 30)
    path.write_bytes(data[:line_start] + longer + data[line_end:])
    items = read(path)
    urls = [r.url for r in items if isinstance(r, Record)]
    assert "http://site.example/2" in urls and "http://site.example/3" in urls
    assert sum(isinstance(r, ReadError) for r in items) == 1


def test_an_upper_case_scheme_still_has_its_http_headers_read(tmp_path: Path):
    path = tmp_path / "upper.warc"
    data, _ = uncompressed(path, 1)
    path.write_bytes(data.replace(b"WARC-Target-URI: https://", b"WARC-Target-URI: HTTPS://"))
    (record,) = read(path)
    assert record.url.startswith("HTTPS://") and record.http_status == 200
    assert record.payload == page("t0", 20)


def damaged_copy(tmp_path: Path, name: str, damage) -> tuple[list, dict[int, bytes | None]]:
    """Records of a real WARC of ../shared/data/warc after `damage(bytearray)`, and the
    payloads of the intact file's records by offset."""
    data = shared_data("warc", name).read_bytes()
    intact = tmp_path / "intact.warc.gz"
    intact.write_bytes(data)
    damaged = bytearray(data)
    damage(damaged)
    path = tmp_path / "damaged.warc.gz"
    path.write_bytes(bytes(damaged))
    return read(path), {r.offset: r.payload for r in read(intact)}


def test_a_member_that_fails_to_inflate_midway_loses_only_its_record(tmp_path: Path):
    """warcio takes a zlib error after a member's first bytes for the end of the file (it only
    prints it): one bit flipped lost the 41 records after it, with a "truncated?" error."""

    def flip(data: bytearray) -> None:
        data[35222] ^= 0x55  # inside the response record at 32353

    items, intact = damaged_copy(tmp_path, "resiliparse_warcfile.warc.gz", flip)
    errors = [r for r in items if isinstance(r, ReadError)]
    assert [(e.offset, e.error[:19]) for e in errors] == [(32353, "corrupt gzip member")]
    records = [r for r in items if isinstance(r, Record)]
    assert len(records) == len(intact) - 1
    assert all(r.payload == intact[r.offset] for r in records)


def test_a_damaged_member_is_an_error_not_a_record_of_garbage(tmp_path: Path):
    """Zeroed bytes at the end of one member and the start of the next: the first came out as
    a record whose payload was garbage, and warcio's "non-chunked gzip" complaint then made
    the rest of the file read as if gzipped whole, 13 records lost."""

    def zero(data: bytearray) -> None:
        data[127488:128000] = bytes(512)  # end of the member at 117477, head of the next

    items, intact = damaged_copy(tmp_path, "dolma_sample-0000.warc.gz", zero)
    errors = [r for r in items if isinstance(r, ReadError)]
    assert [(e.offset, e.error[:19]) for e in errors] == [(117477, "corrupt gzip member")]
    records = [r for r in items if isinstance(r, Record)]
    assert len(records) == len(intact) - 2  # the next member's header is gone with it
    assert all(r.payload == intact[r.offset] for r in records)


def test_an_lf_only_warc_resyncs_after_a_damaged_record(tmp_path: Path):
    """warcio reads WARCs whose lines end in LF alone; the resync looked for CRLF only, so the
    records after a bad one vanished without an error."""

    def record(i: int, shorten: int = 0) -> bytes:
        block = b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n" + page(f"t{i}")
        headers = (
            f"WARC/1.0\nWARC-Type: response\nWARC-Target-URI: https://site.example/{i}\n"
            f"WARC-Date: 2024-05-01T12:00:00Z\nWARC-Record-ID: <urn:uuid:{i:08d}-0000-0000-0000-"
            f"000000000000>\nContent-Type: application/http; msgtype=response\n"
            f"Content-Length: {len(block) - shorten}\n\n"
        )
        return headers.encode() + block + b"\n\n"

    path = tmp_path / "lf.warc"
    path.write_bytes(record(0) + record(1, shorten=50) + record(2) + record(3))
    items = read(path)
    assert kinds(items) == ["Record", "ReadError", "Record", "Record"]
    assert [r.url for r in items[2:]] == ["https://site.example/2", "https://site.example/3"]
    assert items[3].payload == page("t3")


def test_arc_v2_header_lines_are_read_for_their_fields(tmp_path: Path):
    """warcio parses ARC v1 lines only: a v2 record's URL became its first six fields joined
    (`http://site.example/a%201.2.3.4%2020240501...`) and its date 1900."""
    version = (
        b"2 0 Test\nURL IP-address Archive-date Content-type Result-code Checksum Location "
        b"Offset Filename Archive-length\n\n"
    )
    lines = [
        b"filedesc://t.arc 0.0.0.0 20240501120000 text/plain 200 - - 0 t.arc %d\n" % len(version)
        + version
        + b"\n"
    ]
    for name in ("a", "b"):
        http = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + page(name)
        offset = sum(map(len, lines))
        lines.append(
            b"http://site.example/%s 192.0.2.1 20240501120000 text/html 200 SHA1X - %d t.arc %d\n"
            % (name.encode(), offset, len(http))
            + http
            + b"\n"
        )
    path = tmp_path / "v2.arc"
    path.write_bytes(b"".join(lines))
    items = read(path)
    assert [(r.warc_type, r.url) for r in items] == [
        ("warcinfo", None),
        ("response", "http://site.example/a"),
        ("response", "http://site.example/b"),
    ]
    assert items[1].payload == page("a") and items[1].fetch_time.year == 2024


def test_a_response_without_a_target_uri_says_so(tmp_path: Path):
    """warcio trips over the missing URI with a bare AttributeError: the headers are whole."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "no-uri.warc.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        record = writer.create_warc_record(
            None, "response", io.BytesIO(page("x")), http_headers=http
        )
        writer.write_record(record)
    write_warc(tmp_path / "next.warc.gz", [("https://site.example/", page("after"))])
    path.write_bytes(path.read_bytes() + (tmp_path / "next.warc.gz").read_bytes())
    error, after = read(path)
    assert error.error.startswith("no WARC-Target-URI: record headers without one or cut short")
    assert after.url == "https://site.example/"
