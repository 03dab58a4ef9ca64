"""Turn `--input` arguments into a list of WARC/ARC/WET files, and open them.

Accepted forms: a file, a directory (searched recursively), a glob, a text file listing
paths, a Common Crawl `warc.paths(.gz)` manifest (relative paths joined to a prefix; under a
local prefix the files taken, after input.limit, must exist), or a remote URL (s3://, s3a://,
http(s)://) taken as is. Local inputs that do not exist fail here, before Spark starts.
"""

from __future__ import annotations

import glob
import gzip
import http.client
import io
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from refinery.config import local_path
from refinery.errors import RefineryError
from refinery.utf8 import decode_utf8

ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz", ".warc.wet.gz")
MANIFEST_SUFFIXES = (".paths", ".paths.gz")
REMOTE_SCHEMES = ("s3://", "s3a://", "http://", "https://")


class InputError(RefineryError):
    """An input that does not exist or cannot be listed."""


class InputReadError(RuntimeError):
    """Reading an input file failed on the network (a reset connection, a timeout, a server
    error): the task fails, and Spark runs it again (spark.task.maxFailures), where an error
    row would have stood for the rest of the file, lost."""


# botocore's network failures (its ClientError is the service's answer, judged by status)
_BOTO_NETWORK = {
    "ConnectionError",
    "ConnectionClosedError",
    "EndpointConnectionError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "ResponseStreamingError",
    "IncompleteReadError",
}


def is_transient(err: BaseException) -> bool:
    """A network failure, which the same read may not meet again, anywhere in the error's
    chain (warcio and boto3 wrap what the socket raised). A certificate the client refuses
    is no such failure, however its wrapper is named: retrying it only waits."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return False
    return any(_transient(e) for e in chain)


def _transient(err: BaseException) -> bool:
    if isinstance(err, http.client.InvalidURL):  # a manifest line no server takes: every time
        return False
    if isinstance(err, ConnectionError | TimeoutError | http.client.HTTPException):
        return True
    if isinstance(err, socket.gaierror):  # "try again": the resolver did not answer, where
        return err.errno == socket.EAI_AGAIN  # no such host would fail every read the same
    if isinstance(err, ssl.SSLEOFError | ssl.SSLZeroReturnError):  # TLS cut mid-read
        return True
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code == 429
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, BaseException):
        return _transient(err.reason)  # what the socket raised, kept as the reason
    module = type(err).__module__
    if module.startswith("urllib3."):  # ProtocolError, ReadTimeoutError, ... not a bad URL
        return "Location" not in type(err).__name__
    if module.startswith("botocore."):
        if {cls.__name__ for cls in type(err).__mro__} & _BOTO_NETWORK:
            return True
        status = getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status is not None and (status >= 500 or status == 429)
    return False


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_SCHEMES)


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def resolve_inputs(specs: Iterable[str], cc_prefix: str, limit: int | None = None) -> list[str]:
    """All archive files named by `specs`, deduplicated, first `limit` kept: a folder's or a
    glob's sorted, a list's and a warc.paths manifest's in their own order (Common Crawl's
    are sorted)."""
    files: list[str] = []
    for spec in specs:
        files.extend(_resolve_one(spec, cc_prefix))
    files = list(dict.fromkeys(files))
    if not files:
        raise InputError(f"no WARC/ARC/WET files found in input {list(specs)}")
    files = files[:limit] if limit else files
    missing = [f for f in files if not is_remote(f) and not os.path.isfile(f)]
    if missing:  # a warc.paths manifest's keys under a local input.cc_prefix
        raise InputError(
            f"{len(missing)} of the {len(files)} input files not found (a warc.paths "
            f"manifest under input.cc_prefix={cc_prefix!r}?), the first {missing[0]}"
        )
    return files


def resolve_documents(specs: Iterable[str]) -> list[str]:
    """Documents Parquet inputs (files, folders, globs) for the stages after extract: on a
    filesystem Spark reaches by URL (hdfs://, s3a://, ...) taken as is, local ones (a path or
    file://) must exist."""
    paths = list(dict.fromkeys(specs))
    resolved = []
    for spec in paths:
        if "://" in spec and not spec.startswith("file://"):  # Hadoop's to find
            resolved.append(spec)
            continue
        local = local_path(spec)
        if os.path.exists(local):  # `docs [v2]/` is a name, not a glob
            check_documents(local, spec)
            resolved.append(os.path.abspath(local))
            continue
        if not any(c in local for c in "*?[") or not glob.glob(local):
            raise InputError(f"documents input not found: {spec}")
        resolved.append(local)  # a glob: Spark expands it
    return resolved


def check_documents(local: str, spec: str) -> None:
    """Refuse a local file or folder without Parquet, naming what it holds instead."""
    if not _holds_parquet(local):
        raise InputError(f"documents input {spec} holds no Parquet file{_what_it_is(local)}")


def _holds_parquet(spec: str) -> bool:
    """A local file that starts as Parquet does, or a folder with one (Spark would otherwise
    start, then fail with a JVM traceback on a folder of WARCs or shards)."""
    path = Path(spec)
    files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
    for file in files:
        if not file.name.startswith((".", "_")):
            with file.open("rb") as stream:
                if stream.read(4) == b"PAR1":
                    return True
    return False


def _what_it_is(spec: str) -> str:
    """A hint for a documents input that is something else Refinery makes or reads."""
    path = Path(spec)
    if (path / "manifest.json").is_file():
        return " (a tokens folder: the trainer's data=, not a stage's input)"
    if path.is_dir() and any(is_archive(p.name) for p in path.rglob("*")):
        return " (WARC files: `refinery extract` or `curate` reads them)"
    return ""


def _resolve_one(spec: str, cc_prefix: str) -> list[str]:
    spec = local_path(spec)
    if spec.lower().endswith(MANIFEST_SUFFIXES):
        return _read_manifest(spec, cc_prefix)
    if is_remote(spec):
        return [spec]
    if any(ch in spec for ch in "*?[") and not os.path.exists(spec):  # `crawl [2024]/` is a name
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True))
        _refuse_broken_links(found, f"input glob {spec!r}")
        matches = [p for p in found if p.is_file()]
        if not matches:
            raise InputError(f"input glob {spec!r} matches no file")
        return _archives_among(matches, f"input glob {spec!r}")
    path = Path(spec)
    if path.is_dir():
        return _archives_in(path)
    if not path.exists():
        raise InputError(f"input not found: {spec}")
    if is_archive(path.name):
        return [str(path.resolve())]
    return _read_path_list(path)


def _archives_in(folder: Path) -> list[str]:
    """The archive files under `folder`, sorted (`_archives_among`)."""
    found = sorted(folder.rglob("*"))
    _refuse_broken_links(found, f"input directory {folder}")
    files = [p for p in found if p.is_file()]
    return _archives_among(files, f"input directory {folder}", folder)


def _refuse_broken_links(paths: list[Path], where: str) -> None:
    """An archive's name on a link to nothing is input that went missing, as a missing file
    given by name is: not a file to leave out unsaid."""
    broken = [p for p in paths if is_archive(p.name) and p.is_symlink() and not p.exists()]
    if broken:
        raise InputError(
            f"{where}: {broken[0]} is a link to a missing file ({os.readlink(broken[0])})"
            + (f", and {len(broken) - 1} more" if len(broken) > 1 else "")
        )


def _archives_among(files: list[Path], where: str, base: Path | None = None) -> list[str]:
    """The archive files among `files` (those `where` found), resolved and sorted; the others
    are skipped, but said on stderr (a `x.warc.gz.bad` or `x.warc.gz.tmp` may be data the
    user meant to read), named relative to `base` or as found."""
    found = [str(p.resolve()) for p in files if is_archive(p.name)]
    if not found:
        raise InputError(f"{where} holds no .warc/.arc/.wet(.gz) file")
    skipped = [str(p.relative_to(base) if base else p) for p in files if not is_archive(p.name)]
    if skipped:
        print(_skipped_message(where, skipped), file=sys.stderr)
    return sorted(found)


def _skipped_message(where: str, skipped: list[str]) -> str:
    """One line: how many files were skipped, naming the first two."""
    named = ", ".join(skipped[:2])
    if len(skipped) > 2:
        named += f" and {len(skipped) - 2} more"
    return (
        f"{where}: skipped {len(skipped)} file(s) whose names are not .warc/.arc/.wet(.gz): {named}"
    )


def _read_path_list(path: Path) -> list[str]:
    """A text file with one input per line (blank lines and # comments ignored)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is no path
    except UnicodeDecodeError:
        raise InputError(
            f"input {path} is neither a WARC/ARC/WET file (by its name) nor a text list of paths"
        ) from None
    files: list[str] = []
    for number, line in enumerate(lines, 1):
        entry = local_path(line.strip())
        if not entry or entry.startswith("#"):
            continue
        if not is_remote(entry):
            entry_path = Path(entry) if os.path.isabs(entry) else path.parent / entry
            if not entry_path.is_file():
                tried = (
                    ""
                    if os.path.isabs(entry)
                    else f" (relative to the list's folder: {entry_path})"
                )
                raise InputError(f"{path}:{number}: listed input not found: {entry}{tried}")
            entry = str(entry_path.resolve())
        files.append(entry)
    return files


def _read_manifest(spec: str, cc_prefix: str) -> list[str]:
    """Common Crawl's warc.paths.gz: relative keys such as crawl-data/CC-MAIN-.../x.warc.gz."""
    if not is_remote(spec) and not Path(spec).is_file():
        raise InputError(f"input manifest not found: {spec}")
    try:
        with open_input(spec) as raw:
            data = raw.read()
    except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError: OSErrors
        raise InputError(
            f"cannot read input manifest {spec}: {getattr(err, 'reason', err)}"
        ) from None
    if spec.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise InputError(f"manifest {spec} is not valid gzip: {err}") from None
    prefix = cc_prefix if cc_prefix.endswith("/") else cc_prefix + "/"
    if not is_remote(prefix):  # executors open them from their own working folder: absolute
        prefix = os.path.abspath(local_path(prefix)).rstrip("/") + "/"
    text = decode_utf8(data, f"manifest {spec}", InputError)
    entries = [line.strip() for line in text.splitlines() if line.strip()]
    return [e if is_remote(e) else prefix + e.lstrip("/") for e in entries]


def open_input(path: str) -> BinaryIO:
    """A readable binary stream for a local path, s3(a):// object or http(s):// URL."""
    if path.startswith(("http://", "https://")):
        return _WholeBody(urllib.request.urlopen(path, timeout=60))  # noqa: S310 (the user's URL)
    if path.startswith(("s3://", "s3a://")):
        return _open_s3(path)
    return open(path.removeprefix("file://"), "rb")


class _WholeBody(io.RawIOBase):
    """An HTTP response that raises a ConnectionError (a network failure: read again) where
    the server closed the connection before its Content-Length: http.client's read(n) returns
    b"" there, the end of the file to warcio, and the records after it were lost unsaid."""

    def __init__(self, response: http.client.HTTPResponse):
        self.response = response

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        data = self.response.read() if whole else self.response.read(size)
        if not data and size != 0 and self.response.length:
            raise ConnectionError(
                f"the server closed the connection {self.response.length} bytes short of "
                "its Content-Length"
            )
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.response.close()
        super().close()


def _open_s3(path: str) -> BinaryIO:
    try:
        import boto3
    except ImportError:
        raise InputError(
            f"reading {path} needs boto3 where it is read (the driver for a warc.paths "
            "manifest, the executors for WARC files): pip install 'refinery[cluster]'"
        ) from None
    bucket, _, key = path.split("://", 1)[1].partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]  # streams on read()
