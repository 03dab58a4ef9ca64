"""Extract stage: archive records -> documents, each record kept, rejected or an error.

The decisions are plain functions over a `Record`, testable without Spark: `triage` looks at
headers only (so images and request records are never read into memory), `extract_record`
decodes and extracts one record, and `extract_file` streams a whole file. Every record gives
exactly one row of `OUTCOME_FIELDS`; `outcome` says which output it belongs to.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from curation.config import ExtractConfig
from curation.extractor import ExtractorStartError, TimeLimitedExtractor
from curation.http import (
    PayloadError,
    PayloadTooLarge,
    content_type_charset,
    decode_content,
    decode_html,
    decode_transfer,
)
from curation.inputs import InputReadError, is_transient, open_input
from curation.warc import ReadError, Record, iter_records

HTML_TYPES = ("text/html", "application/xhtml+xml")
# The starts WHATWG's MIME Sniffing (section 7.1) takes for HTML, and an XML declaration (XHTML)
_HTML_START = re.compile(
    rb"<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p)"
    rb"[\s>]|<!--|<\?xml",
    re.IGNORECASE,
)
_MIME = re.compile(r"[^\s/]+/[^\s/]+")
_VALUE = re.compile(r'(?:[^,"]|"[^"]*")+')  # up to a comma outside a quoted parameter
# Records that carry a page: HTTP responses, WARC resources (wget, browsertrix) and WET text.
PAGE_RECORDS = ("response", "resource", "conversion")

KEPT, REJECTED, ERROR = "kept", "rejected", "error"
# A file read again after a network failure (from its start, on past the records given), after
# a pause of READ_RETRY_SECONDS × 2^(attempt - 1) (2, 4, 8, 16 s: a server that answered 503
# asks for one); in local mode Spark itself runs no task twice.
READ_ATTEMPTS, READ_RETRY_SECONDS = 5, 2.0

# Document columns written by extract (DESIGN.md's required ones first), then the outcome.
DOCUMENT_FIELDS = (
    "id",
    "url",
    "host",
    "text",
    "source",
    "record_id",
    "fetch_time",
    "offset",
    "warc_type",
    "http_status",
    "content_type",
    "charset",
    "html_bytes",
)
OUTCOME_FIELDS = (*DOCUMENT_FIELDS, "outcome", "reason", "error")


def _essence(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _content_types(content_type: str | None) -> list[str]:
    """The values of a Content-Type (`text/plain, text/html`, or two headers joined so) whose
    type/subtype parses, split at commas outside quoted parameters (`profile="a, b"`)."""
    values = _VALUE.findall(content_type or "")
    return [v for v in values if _MIME.fullmatch(_essence(v)) and _essence(v) != "*/*"]


def mime_type(content_type: str | None) -> str | None:
    """The type/subtype served: of several values, the last that parses (the Fetch standard's
    "extract a MIME type")."""
    values = _content_types(content_type)
    return _essence(values[-1]) if values else None


def served_charset(content_type: str | None) -> str | None:
    """The charset of the type `mime_type` gives: the last one named in the values of that
    type at the end, as Fetch keeps it across them (another type before them resets it)."""
    values = _content_types(content_type)
    for value in reversed(values):
        if _essence(value) != _essence(values[-1]):
            break
        charset = content_type_charset(value)
        if charset:
            return charset
    return None


def triage(record: Record) -> str | None:
    """Reason to reject a record from its headers alone, or None to read its payload."""
    if record.warc_type not in PAGE_RECORDS and record.warc_type != "revisit":
        return f"record_type:{record.warc_type}"
    if record.warc_type == "revisit":
        return "revisit"
    if record.warc_type == "conversion":
        return None
    if not (record.url or "").lower().startswith(("http://", "https://")):
        return "non_http"  # dns:, ftp:, whois: captures
    if record.warc_type == "response" and record.http_status is not None:
        status = record.http_status
        if 300 <= status < 400 and status != 304:  # 304 Not Modified redirects nowhere
            return "redirect"
        if status != 200:
            return f"http_status:{status}"
    mime = mime_type(record.content_type) or mime_type(record.identified_type)
    if mime is not None and mime not in HTML_TYPES:
        return "non_html"
    return None


def bad_http_headers(record: Record) -> bool:
    """An HTTP response whose status line cannot be parsed: unreadable, not a rejection
    (asked only of records that `triage` lets through)."""
    return record.warc_type == "response" and record.http_status is None


def looks_like_html(body: bytes) -> bool:
    """Sniff a payload served without a Content-Type: what WHATWG's MIME sniffing reads as
    HTML (its tags, after a byte-order mark and white space), or an XML declaration."""
    return bool(_HTML_START.match(body[:1024].removeprefix(codecs.BOM_UTF8).lstrip()))


def document_id(record: Record, source: str, repeat: int = 0) -> str:
    """sha1 of the WARC record id: the same capture has the same id however its WARC files
    were cut or named (the id breaks dedup's ties and seeds every sampled decision). A WET
    conversion has its own record id, so a capture read from both its WARC and its WET gives
    two documents of one URL, which dedup resolves. `repeat` parts records of one file that
    share an id (wget writes one WARC-Record-ID on several captures, which dedup would take
    for copies of one record): the n-th repeat in the file gets `#n`. ARC records have no id:
    file name + offset, with the capture's URL and time, since files of one name sit in many
    folders (2008/part-00000.arc.gz, 2009/part-00000.arc.gz) and their records at one offset
    are other pages."""
    if record.from_arc or not record.record_id:
        when = record.fetch_time.isoformat() if record.fetch_time else ""
        key = f"{os.path.basename(source)}@{record.offset} {record.url or ''} {when}"
    else:
        key = record.record_id + (f"#{repeat}" if repeat else "")
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def host_of(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:
        return None


def base_row(record: Record, source: str, repeat: int = 0) -> dict[str, Any]:
    return {
        "id": document_id(record, source, repeat),
        "url": record.url,
        "host": host_of(record.url),
        "text": None,
        "source": source,
        "record_id": None if record.from_arc else record.record_id,
        "fetch_time": record.fetch_time,
        "offset": record.offset,
        "warc_type": record.warc_type,
        "http_status": record.http_status,
        "content_type": record.content_type,
        "charset": None,
        "html_bytes": None,
        "outcome": None,
        "reason": None,
        "error": None,
    }


CANNOT_OPEN = "cannot open: "  # the error of a file that could not be opened at all


def could_not_open(row: dict[str, Any]) -> bool:
    """Whether `row` says its file could not be opened (no record of it was read)."""
    return (
        row["outcome"] == ERROR and row["offset"] is None and row["error"].startswith(CANNOT_OPEN)
    )


def error_row(source: str, offset: int | None, message: str) -> dict[str, Any]:
    row = dict.fromkeys(OUTCOME_FIELDS)
    row.update(source=source, offset=offset, outcome=ERROR, error=message)
    return row


def payload_limit(record: Record, config: ExtractConfig) -> int:
    """Payload bytes to read: none for records triage rejects, one past the cap otherwise."""
    return 0 if triage(record) or bad_http_headers(record) else config.max_html_bytes + 1


def extract_record(
    record: Record,
    source: str,
    config: ExtractConfig,
    extractor: TimeLimitedExtractor,
    repeat: int = 0,
) -> dict[str, Any]:
    """The outcome row of one record whose payload was read per `payload_limit`; `repeat`:
    how many records before it in its file had its record id."""
    row = base_row(record, source, repeat)
    reason = triage(record)
    if reason:
        return dict(row, outcome=REJECTED, reason=reason)
    if bad_http_headers(record):
        line = record.http_statusline
        why = "no HTTP status line (an empty block?)" if not line else f"status line {line!r}"
        return dict(row, outcome=ERROR, error=f"bad HTTP headers: {why}")
    raw = record.payload or b""
    stored = len(raw) if record.payload_bytes is None else record.payload_bytes
    if len(raw) > config.max_html_bytes:  # only the cap + 1 bytes were read
        return dict(row, outcome=REJECTED, reason="too_large", html_bytes=stored)
    if record.warc_type == "conversion":  # WET: the crawler already extracted UTF-8 text
        return _finish(row, raw.decode("utf-8", errors="replace"), config, charset="utf-8")
    try:
        body = decode_transfer(raw, record.transfer_encoding, config.max_html_bytes)
        body = decode_content(body, record.content_encoding, config.max_html_bytes)
    except PayloadTooLarge:  # decoded past the cap: its size as stored is what is known
        return dict(row, outcome=REJECTED, reason="too_large", html_bytes=stored)
    except PayloadError as err:
        return dict(row, outcome=ERROR, error=f"PayloadError: {err}")
    row["html_bytes"] = len(body)
    served = mime_type(record.content_type) or mime_type(record.identified_type)
    if served is None and not looks_like_html(body):
        return dict(row, outcome=REJECTED, reason="non_html")
    html, charset = decode_html(body, served_charset(record.content_type), record.url)
    row["charset"] = charset
    result = extractor.extract(html, record.url)
    if result.status == "timeout":
        return dict(row, outcome=REJECTED, reason="extract_timeout")
    if result.status == "error":
        return dict(row, outcome=ERROR, error=result.message)
    return _finish(row, result.text or "", config, charset)


def _finish(row: dict[str, Any], text: str, config: ExtractConfig, charset: str) -> dict[str, Any]:
    text = text.strip()
    if len(text) < config.min_text_chars:
        return dict(row, outcome=REJECTED, reason="empty_extraction", charset=charset)
    return dict(row, outcome=KEPT, text=text, charset=charset)


def extract_file(
    source: str, config: ExtractConfig, extractor: TimeLimitedExtractor
) -> Iterator[dict[str, Any]]:
    """Outcome rows of every record in one archive file; a file that cannot be opened or
    parsed further gives an error row and the caller goes on with the next file. A network
    failure (`is_transient`) opens the file again and reads on past the records already
    given, up to READ_ATTEMPTS times; then it fails the task, for Spark to run again."""
    seen: Counter[str | None] = Counter()  # record ids so far: a repeated one gets `#n`
    given, last = 0, None  # records and read errors handed on; the last one's offset
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            stream = open_input(source)
        except Exception as err:  # noqa: BLE001 (a missing file, a refused S3 key: reported)
            if not is_transient(err):
                yield error_row(source, None, f"{CANNOT_OPEN}{_named(err)}")
                return
            failure = f"{CANNOT_OPEN}{_named(err)}"
        else:
            try:
                records = iter_records(stream, lambda record: payload_limit(record, config))
                for index, item in enumerate(records):
                    if index < given:  # read again after a network failure
                        continue
                    given, last = given + 1, item.offset
                    if isinstance(item, ReadError):
                        yield error_row(source, item.offset, item.error)
                    else:
                        repeat = seen[item.record_id]
                        seen[item.record_id] += 1
                        yield _extract_or_error(item, source, config, extractor, repeat)
                return
            except Exception as err:
                if not is_transient(err):
                    raise
                where = "before its first record" if last is None else f"after offset {last}"
                failure = f"reading failed {where}: {_named(err)}"
            finally:  # closing a connection that just failed can raise again
                with contextlib.suppress(Exception):
                    stream.close()
        if attempt < READ_ATTEMPTS:
            time.sleep(READ_RETRY_SECONDS * 2 ** (attempt - 1))
    raise InputReadError(
        f"{source}: {failure}; {READ_ATTEMPTS} attempts failed on the network (Spark runs "
        "the task again, up to spark.task.maxFailures)"
    )


def _named(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _extract_or_error(
    record: Record,
    source: str,
    config: ExtractConfig,
    extractor: TimeLimitedExtractor,
    repeat: int,
) -> dict[str, Any]:
    """`extract_record`, with an unexpected failure on this record (a bug, a library's surprise
    on one odd page) made its error row: one record must never fail a whole file's task. An
    extraction process that cannot start is no record's fault: it fails the task."""
    try:
        return extract_record(record, source, config, extractor, repeat)
    except ExtractorStartError:  # a broken setup fails the task, not every record after it
        raise
    except Exception as err:  # noqa: BLE001 (anything: it is reported with the record's offset)
        return error_row(source, record.offset, f"unexpected {type(err).__name__}: {err}"[:1000])
