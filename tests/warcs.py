"""Build small WARC files in tests with warcio (unit tests make their own data)."""

from __future__ import annotations

import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def response_record(
    writer: WARCWriter,
    url: str,
    body: bytes,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    record_id: str | None = None,
):
    http = StatusAndHeaders(status, headers or [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
    warc_headers = {"WARC-Date": "2024-05-01T12:00:00Z"}
    if record_id:
        warc_headers["WARC-Record-ID"] = record_id
    return writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
    )


def write_warc(path: Path, pages: list[tuple[str, bytes]], gzip: bool = True) -> list[int]:
    """Write one response record per (url, html) page; return each record's byte offset."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzip)
    offsets = []
    for i, (url, body) in enumerate(pages):
        offsets.append(buffer.tell())
        writer.write_record(response_record(writer, url, body, record_id=f"<urn:uuid:{i:08d}-0000-0000-0000-000000000000>"))
    path.write_bytes(buffer.getvalue())
    return offsets


def page(title: str, paragraphs: int = 3) -> bytes:
    body = "".join(
        f"<p>The {title} story continues with paragraph {i}, which explains what happened "
        f"to the people of the town and why it mattered to them.</p>"
        for i in range(paragraphs)
    )
    return f"<html><head><title>{title}</title></head><body><article>{body}</article></body></html>".encode()
