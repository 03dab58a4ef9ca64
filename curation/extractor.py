"""Main-text extraction with trafilatura under a hard per-document time limit.

Trafilatura hangs on some pages inside lxml's C code, where signals cannot interrupt it
(FineWeb, DataTrove). So extraction runs in a child process that lives across documents
(start-up cost is paid once per Spark Python worker) and is killed and replaced when a
document exceeds the limit. The limit starts once the child says it is ready (imports done,
one warm-up extraction run), so start-up never counts against a document. Messages are
length-prefixed pickles over the child's stdin and stdout; the child is our own code, so
unpickling its replies is safe.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from curation.config import TrafilaturaConfig

_LENGTH = struct.Struct("<Q")
START_TIMEOUT = 120.0  # seconds; generous, as many workers may start children at once
_WARM_UP_PAGE = "<html><body><p>Warm-up page.</p></body></html>"


@dataclass(frozen=True)
class Extraction:
    status: str  # "ok", "timeout" or "error"
    text: str | None = None
    message: str | None = None


class ExtractorStartError(RuntimeError):
    """The extraction process did not become ready: a broken setup, not a bad document."""


class TimeLimitedExtractor:
    """Extract main text from HTML, never spending more than `timeout` seconds per document."""

    def __init__(
        self,
        options: TrafilaturaConfig,
        timeout: float,
        function: str = "curation.extractor:extract_text",
        start_timeout: float = START_TIMEOUT,
    ):
        """`function` ("module:name", called as f(html, url, options)) runs in the child."""
        self.options = asdict(options)
        self.timeout = timeout
        self.function = function
        self.start_timeout = start_timeout
        self._child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def extract(self, html: str, url: str | None) -> Extraction:
        child = self._ensure_child()
        try:
            _send(child.stdin, (html, url))
            reply = _receive(child.stdout, deadline=time.monotonic() + self.timeout)
        except TimeoutError:
            self._kill()
            return Extraction("timeout", message=f"extraction exceeded {self.timeout:g} s")
        except (EOFError, BrokenPipeError, OSError) as err:
            code = child.poll()
            self._kill()
            return Extraction("error", message=f"extraction process died ({code}): {err}")
        status, payload = reply
        if status == "ok":
            return Extraction("ok", text=payload)
        return Extraction("error", message=payload)

    def close(self) -> None:
        if self._child is not None:
            try:
                self._child.stdin.close()
                self._child.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._child.kill()
            self._child = None

    def __enter__(self) -> TimeLimitedExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_child(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = self._start()
        return self._child

    def _start(self) -> subprocess.Popen[bytes]:
        """A new child, returned once it is ready; raises ExtractorStartError otherwise."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        child = subprocess.Popen(
            [sys.executable, "-m", "curation.extractor", self.function, json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            _receive(child.stdout, deadline=time.monotonic() + self.start_timeout)
        except TimeoutError:
            problem = f"did not start within {self.start_timeout:g} s"
        except (EOFError, OSError):
            problem = f"exited while starting ({child.wait()}); see its stderr"
        else:
            return child
        child.kill()
        child.wait()
        raise ExtractorStartError(f"extraction process for {self.function} {problem}")

    def _kill(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None
            self.restarts += 1


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO, deadline: float | None = None) -> Any:
    header = _read_exactly(stream, _LENGTH.size, deadline)
    return pickle.loads(_read_exactly(stream, _LENGTH.unpack(header)[0], deadline))


def _read_exactly(stream: BinaryIO, size: int, deadline: float | None) -> bytes:
    chunks = []
    fd = stream.fileno()
    while size:
        if deadline is not None:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("extraction process closed its output")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def extract_text(html: str, url: str | None, options: dict[str, Any]) -> str | None:
    """Plain trafilatura call, shared by the worker and the bare-speed benchmark."""
    import trafilatura

    return trafilatura.extract(
        html, url=url, output_format="txt", with_metadata=False, config=_config(), **options
    )


@functools.cache
def _config() -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # our process kill is the time limit
    return config


def _serve(function: str, options: dict[str, Any]) -> None:
    """Child loop: say "ready", then read (html, url), answer ("ok", text) or ("error", message).

    The warm-up extraction pays for lazy imports and set-up (trafilatura's first call) before
    "ready", so they do not count against the first document's time limit.
    """
    module, _, name = function.partition(":")
    extract = getattr(importlib.import_module(module), name)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print from a library must not corrupt the protocol
    extract(_WARM_UP_PAGE, None, options)
    _send(stdout, "ready")
    while True:
        try:
            html, url = _receive(stdin)
        except EOFError:
            return
        try:
            reply = ("ok", extract(html, url, options))
        except Exception as err:  # noqa: BLE001 (any failure is reported for this document)
            reply = ("error", f"{type(err).__name__}: {err}"[:1000])
        _send(stdout, reply)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
