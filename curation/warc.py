"""Stream records out of WARC, ARC and WET files without letting one bad record stop a file.

`iter_records` yields a `Record` per archive record (headers parsed, payload still unread) or
a `ReadError` where the file cannot be parsed. After an error in a seekable file it resyncs
to the next record boundary (the next gzip member that starts a WARC record, or the next
`WARC/<version>` line in an uncompressed file) and goes on; unseekable streams end at the error.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ARC2WARCHeadersParser, ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.warcwriter import WARCWriter

from curation.inputs import is_transient

_GZIP_MAGIC = b"\x1f\x8b\x08"
# Where a record may start, to resync after damage: a gzip member, or the version line of
# any WARC version (warcio reads 0.17 and 0.18 as well as 1.0 and 1.1).
_GZIP_MEMBER = re.compile(re.escape(_GZIP_MAGIC))
_WARC_VERSION_LINE = re.compile(rb"WARC/\d\.\d+\r?\n")  # warcio reads LF-only files too
_RESYNC_WINDOW = 1 << 20
# ARC v1 record header: URL IP-address archive-date(14 digits) content-type length
_ARC_HEADER = re.compile(rb"^(filedesc://|\S+://\S* \S+ \d{8,14} )")
# A whole ARC record line, where an uncompressed ARC resyncs: v1 (URL IP date type length) or
# v2 (URL IP date type result-code checksum location offset filename length).
_ARC_RECORD_LINE = re.compile(
    rb"(?<=\n)\S+://\S* \S+ \d{8,14} \S+ (?:\S+ \S+ \S+ \d+ \S+ )?\d+\r?\n"
)
_ARC_V2_LINE = re.compile(r"\S+:\S* \S+ \d{8,14} \S+ \S+ \S+ \S+ \d+ \S+ \d+\s*$")  # dns: too
_RESYNC_OVERLAP = 4096  # windows overlap by a long header line, so none is cut in two


class _MarkedArcHeaders(ARC2WARCHeadersParser):
    """warcio's ARC-to-WARC header conversion, marking the record as converted: warcio then
    reports it as format `warc`, with a random record id invented for it. warcio reads only
    ARC v1 header lines; a v2 line is given to it as the v1 line of the same record."""

    def parse(self, stream, headerline=None):
        if headerline is None:
            headerline = stream.readline()
        line = StatusAndHeadersParser.decode_header(headerline)
        if _ARC_V2_LINE.match(line):
            url, ip, date, content_type, *_, length = line.split()
            headerline = f"{url} {ip} {date} {content_type} {length}\n"
        return super().parse(stream, headerline)

    def _get_protocol_and_headers(self, headerline, parts):
        protocol, headers = super()._get_protocol_and_headers(headerline, parts)
        return protocol, [*headers, (_FROM_ARC, "1")]


_FROM_ARC = "Refinery-From-ARC"
# Target URIs whose block warcio parses as HTTP. Schemes are case-insensitive (RFC 3986);
# warcio matches lower case only, so an `HTTPS://` capture lost its HTTP headers.
_HTTP_SCHEMES = tuple(
    spelling
    for scheme in ("http:", "https:")
    for spelling in (scheme, scheme.upper(), scheme.title())
)


@dataclass
class Record:
    """One archive record's headers and, if asked for, its raw HTTP body (or WET text)."""

    offset: int  # byte offset of the record (its gzip member) in the file
    warc_type: str
    url: str | None
    record_id: str | None
    refers_to: str | None
    fetch_time: datetime | None
    http_status: int | None
    http_statusline: str | None
    content_type: str | None
    content_encoding: str | None
    transfer_encoding: str | None
    identified_type: str | None
    from_arc: bool = False  # ARC has no record ids (warcio invents random ones on conversion)
    payload: bytes | None = None
    payload_bytes: int | None = None  # the whole payload's size, read or not


class TruncatedRecord(EOFError):
    """The file ends before the record's declared Content-Length."""


class BadRecordHeaders(ValueError):
    """Record headers warcio reads without complaint but that cannot delimit a record."""


class RecordLengthWrong(ValueError):
    """A record whose Content-Length does not end where the record does."""

    def __init__(self, offset: int):
        super().__init__(
            "the record's Content-Length does not end where it does (no blank line follows "
            "it): its text would be cut short or run into the next record"
        )
        self.offset = offset


# Headers the WARC standard allows once per record: twice means two records' headers merged.
_ONCE_PER_RECORD = ("WARC-Type", "WARC-Record-ID", "WARC-Date")


def _check_headers(warc_record: ArcWarcRecord, record: Record) -> None:
    """Refuse a record without a type, a WARC record without a Content-Length (warcio then
    reads the records after it as its content, so they would vanish into it), or one whose
    headers run into the next record's (which would vanish into it too). Headers that the file
    ends inside are a cut file, said as such."""
    # no length: warcio read to the end of the file for the content, so nothing left is a cut
    # (a record of length 0 reads nothing either, and is no cut)
    if not record.from_arc and warc_record.length is None and warc_record.raw_stream.read(1) == b"":
        raise TruncatedRecord("the file ends inside a record's headers: it is cut short")
    if not record.warc_type:
        raise BadRecordHeaders("record without a WARC-Type")
    if record.from_arc:
        return
    if warc_record.length is None:
        raise BadRecordHeaders("record without a Content-Length: where it ends is unknown")
    names = [name.lower() for name, _ in warc_record.rec_headers.headers]
    for name in _ONCE_PER_RECORD:
        if names.count(name.lower()) > 1:
            raise BadRecordHeaders(
                f"{name} twice in one record's headers: a header block cut short runs into "
                "the next record's"
            )


class CorruptMember(ValueError):
    """A record whose gzip member stops inflating: warcio took the damage for the member's end."""

    def __init__(self, offset: int):
        super().__init__(_CORRUPT_MEMBER)
        self.offset = offset


def _member_broken(iterator: ArchiveIterator, stream: BinaryIO, offset: int) -> bool:
    """Whether the gzip member of the record just read fails to inflate. warcio writes the
    zlib error to stderr and reads on as if the member ended there, so the record came with
    garbage in place of its text; a sound member has ended by the end of its record (every
    one of ../shared/data/warc's 1,345), so only one that has not is inflated again. The first
    member is left to warcio: a file gzipped whole is that one member, its records' offsets 0
    or negative, and when warcio says so it is read as a stream, up to any damage."""
    decompressor = iterator.reader.decompressor
    if decompressor is None or decompressor.eof or offset <= 0 or not _seekable(stream):
        return False
    position = stream.tell()
    try:
        return _corrupt_member(stream, offset) is not None
    finally:
        stream.seek(position)


@dataclass
class ReadError:
    offset: int
    error: str


def iter_records(
    stream: BinaryIO, payload_limit: Callable[[Record], int]
) -> Iterator[Record | ReadError]:
    """Records of one archive file, in order.

    `payload_limit(record)` says how many payload bytes to read into `record.payload`
    (0: skip it, so images and other unwanted payloads are never held in memory).
    """
    if _seekable(stream) and not _starts_like_archive(stream):
        head, gzipped = _head(stream)
        if head is None or not gzipped:  # quote the bytes as they are
            head, gzipped = stream.read(40), False
        what = f"gzipped, starts with {head[:40]!r}" if gzipped else f"starts with {head[:40]!r}"
        yield ReadError(offset=0, error=f"not a WARC/ARC file: {what}")
        return
    # blank lines before the first record (warcio would read them as a record of no type)
    base, read = _skip_separator(stream, 0), 0
    while True:
        if _seekable(stream):
            stream.seek(base)
        iterator = ArchiveIterator(stream, arc2warc=True, check_digests=False)
        # warcio's "Record not followed by newline" on stderr names no file: the record's
        # RecordLengthWrong error row below says it, with the file and offset
        iterator.INC_RECORD = ""
        iterator.loader.arc_parser = _MarkedArcHeaders()
        iterator.loader.HTTP_SCHEMES = _HTTP_SCHEMES
        last_end: int | None = None  # where the last good record ended
        try:
            for warc_record in iterator:
                record = _to_record(warc_record)
                _check_headers(warc_record, record)
                _read_payload(warc_record, record, payload_limit(record))
                # Only now: warcio reads a record to its end to know where it started.
                # Its offsets are absolute: it counts from the stream's position.
                warnings = iterator.err_count
                record.offset = iterator.get_record_offset()
                # A single-member gzip file gives negative lengths; resync from the record.
                last_end = record.offset + max(iterator.get_record_length(), 1)
                if _member_broken(iterator, stream, record.offset):
                    raise CorruptMember(record.offset)
                read += 1
                if iterator.err_count > warnings:  # warcio found no blank line after it
                    raise RecordLengthWrong(record.offset)
                yield record
        except Exception as err:  # noqa: BLE001 (warcio raises many types on bad input)
            if is_transient(err):  # not the file's fault: the caller fails the task
                raise
            if base == 0 and _one_gzip_member(err) and _seekable(stream):
                yield from _one_member_records(stream, payload_limit, skip=read)
                return
            if isinstance(err, RecordLengthWrong | CorruptMember):  # resync from its start
                current = err.offset
            else:
                # blank lines or NUL padding after a gzipped member, which warcio read as a
                # record without a WARC-Type: read on after them, or end there
                padded = last_end is not None and _padding_end(stream, last_end)
                if padded:
                    if padded == stream.seek(0, 2):
                        return
                    base = padded
                    continue
                current = base if last_end is None else _skip_separator(stream, last_end)
            corrupt = _seekable(stream) and _corrupt_member(stream, current)
            yield ReadError(offset=current, error=_ending(stream, corrupt or _describe(err)))
        else:
            tail = _unread_tail(
                stream, base if last_end is None else _skip_separator(stream, last_end)
            )
            if not tail:
                return
            # warcio also stops, silently, at a member that does not inflate: records may follow
            current = tail[0]
            yield ReadError(offset=current, error=_corrupt_member(stream, current) or tail[1])
        base = _next_boundary(stream, current + 1) if _seekable(stream) else None
        if base is None:
            return


def _ending(stream: BinaryIO, error: str) -> str:
    """`error`, saying so where reading ends at it: a stream that cannot seek cannot look
    past the damage for a next record, a remote one (http, S3) or a local file gzipped
    whole (read through `_Gunzip`)."""
    if _seekable(stream):
        return error
    if isinstance(stream, _Gunzip):
        return (
            f"{error}; reading stops here: the file is gzipped whole, one member, which cannot "
            "be searched past damage (`warcio recompress` gives each record its own)"
        )
    return (
        f"{error}; reading stops here: a remote stream cannot seek past damage (copy the "
        "file locally to read any records after it)"
    )


def _one_gzip_member(err: Exception) -> bool:
    """warcio's complaint about a file gzipped whole (`gzip x.warc`) instead of per record."""
    return isinstance(err, ArchiveLoadFailed) and "non-chunked gzip" in str(err)


def _one_member_records(
    stream: BinaryIO, payload_limit: Callable[[Record], int], skip: int
) -> Iterator[Record | ReadError]:
    """The records of a file gzipped whole, after the first `skip` (already yielded): warcio
    cannot seek in one gzip member, so they are read from the decompressed stream, in order,
    with offsets counted in decompressed bytes."""
    stream.seek(0)
    records = iter_records(_Gunzip(stream), payload_limit)
    yield from itertools.islice(records, skip, None)


class GzipCutShort(OSError):
    """A gzip stream that ends inside a member (not EOFError: warcio takes that for the end)."""


class _Gunzip(io.RawIOBase):
    """The decompressed bytes of a gzip stream, members one after another, forward only (so
    warcio and `iter_records` read it as a stream). Unlike GzipFile, a stream cut short gives
    every byte before the cut, then GzipCutShort: GzipFile's EOFError dropped the bytes it had
    decompressed, and warcio took it for the end of the file, so whole records went unseen."""

    def __init__(self, inner: BinaryIO):
        self.inner = inner
        self.decompressor = zlib.decompressobj(31)
        self.pending = b""
        self.compressed = 0  # compressed bytes read so far

    def readable(self) -> bool:
        return True

    def _more(self) -> bytes:
        data = self.inner.read(1 << 16)
        self.compressed += len(data)
        return data

    def readinto(self, buffer) -> int:
        while not self.pending:
            if self.decompressor.eof:  # a member ended: another may follow (zero padding may)
                data = self.decompressor.unused_data.lstrip(b"\0") or self._more().lstrip(b"\0")
                if not data:
                    return 0
                self.decompressor = zlib.decompressobj(31)
            else:
                data = self._more()
                if not data:
                    raise GzipCutShort(
                        f"gzip stream cut short after {self.compressed} bytes: the record "
                        "there is incomplete"
                    )
            try:
                self.pending = self.decompressor.decompress(data)
            except zlib.error as err:
                raise GzipCutShort(
                    f"gzip data damaged near byte {self.compressed}: {err}"
                ) from None
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _padding_end(stream: BinaryIO, start: int) -> int | None:
    """Where the blank lines, NUL bytes and empty gzip members (a writer's closing one) from
    `start` end, at the next record or the end of the file; None when other bytes come first
    (or the stream cannot seek)."""
    if not _seekable(stream):
        return None
    following = _next_boundary(stream, start)
    end = stream.seek(0, 2) if following is None else following
    stream.seek(start)
    for _ in range(start, end, _RESYNC_WINDOW):
        if _unread(stream.read(min(_RESYNC_WINDOW, end - stream.tell())).lstrip(b"\r\n\0 ")):
            return None
    return end


def _skip_separator(stream: BinaryIO, offset: int) -> int:
    """Skip the blank lines that end an uncompressed record, to point at the next one."""
    if not _seekable(stream):
        return offset
    while True:
        stream.seek(offset)
        head = stream.read(4096)
        blank = len(head) - len(head.lstrip(b"\r\n"))
        offset += blank
        if blank < len(head) or not head:
            return offset


def _starts_like_archive(stream: BinaryIO) -> bool:
    """WARC or ARC by its first bytes (warcio would read any text file as ARC records)."""
    head, gzipped = _head(stream)
    if head is None:  # a corrupt first member: an error row, and the records after it
        return gzipped
    first_line = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    return first_line.startswith(b"WARC/") or bool(_ARC_HEADER.match(first_line))


def _head(stream: BinaryIO) -> tuple[bytes | None, bool]:
    """The file's first bytes after any blank lines, decompressed when it is gzipped, past
    empty members (a writer's empty first member hid the records after it); None when its
    first member does not inflate. And whether it is gzipped."""
    stream.seek(_skip_separator(stream, 0))
    data = stream.read(4096)
    stream.seek(0)
    if not data.startswith(_GZIP_MAGIC[:2]):
        return data, False
    text = b""
    try:
        while data and not text:
            inflate = zlib.decompressobj(31)
            text = inflate.decompress(data, 256)
            data = inflate.unused_data.lstrip(b"\0") if inflate.eof else b""
    except zlib.error:
        return None, data.startswith(_GZIP_MAGIC)
    return text, True


def _unread_tail(stream: BinaryIO, end: int) -> tuple[int, str] | None:
    """An error for bytes after the last record that warcio skipped silently (a cut-off
    gzip member, a record without its header), or None when the file ends cleanly."""
    if not _seekable(stream):
        return None
    stream.seek(end)
    if not _unread(stream.read(_RESYNC_WINDOW)):
        return None
    size = stream.seek(0, 2)
    return end, f"{size - end} bytes after the last complete record could not be read (truncated?)"


def _unread(rest: bytes) -> bool:
    """Whether bytes after the last record hold more than blank lines, padding and empty
    gzip members."""
    return bool(rest.strip(b"\r\n\0 ")) and not _empty_members(rest)


def _empty_members(data: bytes) -> bool:
    """Whether `data` is gzip members that inflate to nothing (a writer's closing member)."""
    try:
        while data:
            inflate = zlib.decompressobj(31)
            if inflate.decompress(data) or not inflate.eof:
                return False
            data = inflate.unused_data.lstrip(b"\0")
    except zlib.error:
        return False
    return True


def _read_payload(warc_record: ArcWarcRecord, record: Record, limit: int) -> None:
    """Read up to `limit` payload bytes, drain the rest, and refuse a record cut short."""
    raw = warc_record.raw_stream
    size = 0
    if limit:
        record.payload = raw.read(limit)
        size = len(record.payload)
    while chunk := raw.read(1 << 16):
        size += len(chunk)
    record.payload_bytes = size
    if getattr(raw, "limit", 0) > 0:
        raise TruncatedRecord(
            f"record truncated: {raw.limit} of its {warc_record.length} content bytes are missing"
        )


def _joined(headers: StatusAndHeaders, name: str) -> str | None:
    """Every value of header `name`, comma-joined as HTTP combines repeated fields (RFC 9110
    section 5.3), or None without one: a second Content-Type may be the one that counts."""
    values = [value for key, value in headers.headers if key.lower() == name.lower()]
    return ", ".join(values) if values else None


def _to_record(record: ArcWarcRecord) -> Record:
    headers = record.rec_headers
    http = record.http_headers
    content_type = _joined(http, "Content-Type") if http else None
    if content_type is None and record.rec_type in ("resource", "conversion"):
        content_type = headers.get_header("Content-Type")
    status = None
    if http is not None and record.rec_type in ("response", "revisit"):
        status = _status_code(http.get_statuscode())

    return Record(
        offset=-1,
        warc_type=record.rec_type,
        url=headers.get_header("WARC-Target-URI"),
        record_id=headers.get_header("WARC-Record-ID"),
        refers_to=headers.get_header("WARC-Refers-To"),
        fetch_time=parse_warc_date(headers.get_header("WARC-Date")),
        http_status=status,
        http_statusline=http.statusline if http else None,
        content_type=content_type,
        content_encoding=http.get_header("Content-Encoding") if http else None,
        transfer_encoding=http.get_header("Transfer-Encoding") if http else None,
        identified_type=headers.get_header("WARC-Identified-Payload-Type"),
        from_arc=headers.get_header(_FROM_ARC) is not None,
    )


def _status_code(raw: str | None) -> int | None:
    """The HTTP status, or None when it is no 3-digit code (the record is then an error)."""
    try:
        code = int(raw) if raw else None
    except ValueError:
        return None
    return code if code is not None and 100 <= code <= 999 else None


def parse_warc_date(value: str | None) -> datetime | None:
    """WARC-Date (ISO 8601, UTC, 'Z' suffix, optional fraction) as an aware datetime.

    WARC-Date is UTC by definition, so a value without a zone is UTC too, never the worker's
    local time.
    """
    if not value:
        return None
    value = value.strip()
    try:
        if value.isdigit() and len(value) == 14:  # ARC's YYYYMMDDhhmmss, found in old WARCs
            parsed = datetime.strptime(value, "%Y%m%d%H%M%S")
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# How warcio's "Unknown archive format, first line: [...]" quotes a gzip member's magic bytes
# (a stream that cannot seek back to the member to try it)
_GZIP_FIRST_LINE = re.compile(r"first line: \[.\\x1f\\x8b")
_CORRUPT_MEMBER = "corrupt gzip member: its compressed data does not inflate"
_MEMBER_PEEK = 4 << 20  # compressed bytes tried: a crawl's members are under 1 MiB


def _corrupt_member(stream: BinaryIO, offset: int) -> str | None:
    """The error row's message when the gzip member at `offset` does not inflate (warcio then
    reads its bytes as a record, and says "Unknown archive format" or a wrong length), or None
    when it inflates, runs past _MEMBER_PEEK, or is no gzip member (an uncompressed file's
    record: three bytes read)."""
    stream.seek(offset)
    if stream.read(len(_GZIP_MAGIC)) != _GZIP_MAGIC:
        return None
    stream.seek(offset)
    inflate, read = zlib.decompressobj(31), 0
    try:
        while not inflate.eof and read < _MEMBER_PEEK:
            chunk = stream.read(1 << 16)
            if not chunk:
                return None  # cut short: warcio says so
            read += len(chunk)
            inflate.decompress(chunk, 1 << 20)
            while inflate.unconsumed_tail and not inflate.eof:  # output capped: go on with it
                inflate.decompress(inflate.unconsumed_tail, 1 << 20)
    except zlib.error as err:
        return f"{_CORRUPT_MEMBER} (zlib: {err})"
    return None


def _describe(err: Exception) -> str:
    """The error row's message. warcio trips over a header cut short with a bare Python error
    (AttributeError on None, say): those say what it means first."""
    message = " ".join(str(err).split())
    if isinstance(err, ArchiveLoadFailed) and _GZIP_FIRST_LINE.search(message):
        # warcio reads a member it cannot inflate as plain text, and quotes its bytes
        return f"{_CORRUPT_MEMBER} (warcio: not a record)"
    described = f"{type(err).__name__}: {message}" if message else type(err).__name__
    if isinstance(err, AttributeError) and _raised_in(err, "load_http_headers"):
        # warcio asks the target URI's scheme before it reads the HTTP headers: whole headers
        # without one trip here, as do headers cut before it
        described = (
            f"no WARC-Target-URI: record headers without one or cut short (warcio: {described})"
        )
    elif isinstance(err, AttributeError | TypeError | IndexError | KeyError):
        described = f"record headers unreadable, cut short or damaged (warcio: {described})"
    return described[:1000]


def _raised_in(err: Exception, function: str) -> bool:
    """Whether `err` was raised in a function of that name (the innermost frame)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == function


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError):
        return False


def _next_boundary(stream: BinaryIO, start: int) -> int | None:
    """Offset of the next plausible record start at or after `start`, or None at end of file."""
    stream.seek(0)
    head = stream.read(4096)
    gzipped = head.startswith(_GZIP_MAGIC[:2])
    pattern = (
        _GZIP_MEMBER
        if gzipped
        else _ARC_RECORD_LINE
        if _ARC_HEADER.match(head.lstrip(b"\r\n"))
        else _WARC_VERSION_LINE
    )
    position = start
    while True:
        stream.seek(position)
        window = stream.read(_RESYNC_WINDOW + _RESYNC_OVERLAP)
        if not window:
            return None
        for offset in (match.start() for match in pattern.finditer(window)):
            if offset >= _RESYNC_WINDOW:
                break
            if not gzipped or _starts_warc_member(window[offset:]):
                return position + offset
        if len(window) <= _RESYNC_WINDOW:
            return None
        position += _RESYNC_WINDOW


def _starts_warc_member(data: bytes) -> bool:
    """True if a gzip member starts here and its first bytes are a WARC or ARC header."""
    try:
        head = zlib.decompressobj(31).decompress(data[:65536], 16)
    except zlib.error:
        return False
    return head.startswith((b"WARC/", b"filedesc://", b"http://", b"https://", b"dns:"))


def write_response_warc(
    path: str | Path,
    pages: Iterable[tuple[str, bytes]],
    gzip: bool = True,
    content_type: str = "text/html; charset=utf-8",
    date: str = "2024-05-01T12:00:00Z",
) -> list[int]:
    """Wrap (url, body) pages into a WARC of 200 responses, deterministically (record ids
    from url and position); return each record's offset. For tests and benchmarks."""
    offsets = []
    with open(path, "wb") as stream:
        writer = WARCWriter(stream, gzip=gzip)
        for i, (url, body) in enumerate(pages):
            offsets.append(stream.tell())
            http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            record_id = uuid.UUID(hashlib.md5(f"{i} {url}".encode()).hexdigest())
            headers = {"WARC-Date": date, "WARC-Record-ID": f"<urn:uuid:{record_id}>"}
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                http_headers=http,
                warc_headers_dict=headers,
            )
            writer.write_record(record)
    return offsets
