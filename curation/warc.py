"""Stream records out of WARC, ARC and WET files without letting one bad record stop a file.

`iter_records` yields a `Record` per archive record (headers parsed, payload still unread) or
a `ReadError` where the file cannot be parsed. After an error in a seekable file it resyncs
to the next record boundary (the next gzip member that starts a WARC record, or the next
`WARC/<version>` line in an uncompressed file) and goes on; unseekable streams end at the error.
"""

from __future__ import annotations

import gzip
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
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

_GZIP_MAGIC = b"\x1f\x8b\x08"
# Where a record may start, to resync after damage: a gzip member, or the version line of
# any WARC version (warcio reads 0.17 and 0.18 as well as 1.0 and 1.1).
_GZIP_MEMBER = re.compile(re.escape(_GZIP_MAGIC))
_WARC_VERSION_LINE = re.compile(rb"WARC/\d\.\d+\r\n")
_RESYNC_WINDOW = 1 << 20
# ARC v1 record header: URL IP-address archive-date(14 digits) content-type length
_ARC_HEADER = re.compile(rb"^(filedesc://|\S+://\S* \S+ \d{8,14} )")


class _MarkedArcHeaders(ARC2WARCHeadersParser):
    """warcio's ARC-to-WARC header conversion, marking the record as converted: warcio then
    reports it as format `warc`, with a random record id invented for it."""

    def _get_protocol_and_headers(self, headerline, parts):
        protocol, headers = super()._get_protocol_and_headers(headerline, parts)
        return protocol, [*headers, (_FROM_ARC, "1")]


_FROM_ARC = "Refinery-From-ARC"


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


class TruncatedRecord(EOFError):
    """The file ends before the record's declared Content-Length."""


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
        stream.seek(0)
        yield ReadError(offset=0, error=f"not a WARC/ARC file: starts with {stream.read(40)!r}")
        return
    base, read = 0, 0
    while True:
        if base:
            stream.seek(base)
        iterator = ArchiveIterator(stream, arc2warc=True, check_digests=False)
        iterator.loader.arc_parser = _MarkedArcHeaders()
        last_end: int | None = None  # where the last good record ended
        try:
            for warc_record in iterator:
                record = _to_record(warc_record)
                _read_payload(warc_record, record, payload_limit(record))
                # Only now: warcio reads a record to its end to know where it started.
                # Its offsets are absolute: it counts from the stream's position.
                record.offset = iterator.get_record_offset()
                # A single-member gzip file gives negative lengths; resync from the record.
                last_end = record.offset + max(iterator.get_record_length(), 1)
                read += 1
                yield record
        except Exception as err:  # noqa: BLE001 (warcio raises many types on bad input)
            if base == 0 and _one_gzip_member(err) and _seekable(stream):
                yield from _one_member_records(stream, payload_limit, skip=read)
                return
            current = base if last_end is None else _skip_separator(stream, last_end)
            yield ReadError(offset=current, error=_describe(err))
        else:
            tail = _unread_tail(stream, base if last_end is None else last_end)
            if tail:
                yield ReadError(offset=tail[0], error=tail[1])
            return
        base = _next_boundary(stream, current + 1) if _seekable(stream) else None
        if base is None:
            return


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
    records = iter_records(_ForwardOnly(gzip.GzipFile(fileobj=stream)), payload_limit)
    yield from itertools.islice(records, skip, None)


class _ForwardOnly(io.RawIOBase):
    """A readable stream that says it cannot seek, so warcio and `iter_records` read it as a
    stream (a GzipFile can seek, but only by decompressing again, and not from the end)."""

    def __init__(self, inner: BinaryIO):
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _skip_separator(stream: BinaryIO, offset: int) -> int:
    """Skip the blank lines that end an uncompressed record, to point at the next one."""
    if not _seekable(stream):
        return offset
    stream.seek(offset)
    head = stream.read(16)
    return offset + len(head) - len(head.lstrip(b"\r\n"))


def _starts_like_archive(stream: BinaryIO) -> bool:
    """WARC or ARC by its first bytes (warcio would read any text file as ARC records)."""
    stream.seek(0)
    head = stream.read(4096)
    stream.seek(0)
    if head.startswith(_GZIP_MAGIC[:2]):
        try:
            head = zlib.decompressobj(31).decompress(head, 256)
        except zlib.error:
            return False
    first_line = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    return first_line.startswith(b"WARC/") or bool(_ARC_HEADER.match(first_line))


def _unread_tail(stream: BinaryIO, end: int) -> tuple[int, str] | None:
    """An error for bytes after the last record that warcio skipped silently (a cut-off
    gzip member, a record without its header), or None when the file ends cleanly."""
    if not _seekable(stream):
        return None
    stream.seek(end)
    rest = stream.read(_RESYNC_WINDOW)
    if not rest.strip(b"\r\n\0 "):
        return None
    size = stream.seek(0, 2)
    return end, f"{size - end} bytes after the last complete record could not be read (truncated?)"


def _read_payload(warc_record: ArcWarcRecord, record: Record, limit: int) -> None:
    """Read up to `limit` payload bytes, drain the rest, and refuse a record cut short."""
    raw = warc_record.raw_stream
    if limit:
        record.payload = raw.read(limit)
    while raw.read(1 << 16):
        pass
    if getattr(raw, "limit", 0) > 0:
        raise TruncatedRecord(
            f"record truncated: {raw.limit} of its {warc_record.length} content bytes are missing"
        )


def _to_record(record: ArcWarcRecord) -> Record:
    headers = record.rec_headers
    http = record.http_headers
    content_type = http.get_header("Content-Type") if http else None
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
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def parse_warc_date(value: str | None) -> datetime | None:
    """WARC-Date (ISO 8601, UTC, 'Z' suffix, optional fraction) as an aware datetime.

    WARC-Date is UTC by definition, so a value without a zone is UTC too, never the worker's
    local time.
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _describe(err: Exception) -> str:
    """The error row's message. warcio trips over a header cut short with a bare Python error
    (AttributeError on None, say): those say what it means first."""
    message = " ".join(str(err).split())
    described = f"{type(err).__name__}: {message}" if message else type(err).__name__
    if isinstance(err, AttributeError | TypeError | IndexError | KeyError):
        described = f"record headers unreadable, cut short or damaged (warcio: {described})"
    return described[:1000]


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError):
        return False


def _next_boundary(stream: BinaryIO, start: int) -> int | None:
    """Offset of the next plausible record start at or after `start`, or None at end of file."""
    stream.seek(0)
    head = stream.read(2)
    gzipped = head == _GZIP_MAGIC[:2]
    position = start
    while True:
        stream.seek(position)
        window = stream.read(_RESYNC_WINDOW + 16)
        if not window:
            return None
        candidates = _candidate_offsets(window, gzipped)
        for offset in candidates:
            if offset >= _RESYNC_WINDOW:
                break
            if not gzipped or _starts_warc_member(window[offset:]):
                return position + offset
        if len(window) <= _RESYNC_WINDOW:
            return None
        position += _RESYNC_WINDOW


def _candidate_offsets(window: bytes, gzipped: bool) -> Iterator[int]:
    pattern = _GZIP_MEMBER if gzipped else _WARC_VERSION_LINE
    return (match.start() for match in pattern.finditer(window))


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
