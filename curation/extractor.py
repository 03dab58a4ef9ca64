"""Main-text extraction with trafilatura under a hard per-document time limit.

Trafilatura hangs on some pages inside lxml's C code, where signals cannot interrupt it
(FineWeb, DataTrove). So extraction runs in a child process that lives across documents
(start-up cost is paid once per Spark Python worker) and is killed and replaced when a
document exceeds the limit. The limit starts once the child says it is ready (imports done,
one warm-up extraction run), so start-up never counts against a document. It counts the
child's CPU seconds (Linux /proc), so a loaded machine does not turn slow pages into timeouts
and the same input gives the same documents; a child that waits without computing is still
stopped at WALL_FACTOR times the limit of wall-clock time (and where /proc is missing, at the
limit itself). Messages are
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
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from curation.config import TrafilaturaConfig

_LENGTH = struct.Struct("<Q")
START_TIMEOUT = 120.0  # seconds; generous, as many workers may start children at once
WALL_FACTOR = 10.0  # wall-clock cap of a document, in multiples of its CPU-time limit
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
        budget = DocumentBudget(child.pid, self.timeout)
        try:
            _send(child.stdin, (html, url))
            reply = _receive(child.stdout, budget.remaining)
        except TimeoutError:
            message = f"extraction exceeded {budget.spent()}"  # while the child is there to ask
            self._kill()
            return Extraction("timeout", message=message)
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
        deadline = time.monotonic() + self.start_timeout
        try:
            said = _receive(child.stdout, lambda: deadline - time.monotonic())
        except TimeoutError:
            problem = f"did not start within {self.start_timeout:g} s"
        except (EOFError, OSError):
            problem = f"exited while starting ({child.wait()}); see its stderr"
        except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError):
            problem = "sent something other than its start-up message"
        else:
            if said == "ready":
                return child
            # its import or warm-up failed (a package missing from an executor's Python)
            where = f"on host {socket.gethostname()}, working folder {os.getcwd()}"
            cause = said[1] if isinstance(said, tuple) and len(said) == 2 else repr(said)[:200]
            problem = f"could not start ({where}): {cause}"
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


class DocumentBudget:
    """The time one document may still take: `limit` CPU seconds of the child, and at most
    WALL_FACTOR times that of wall-clock time (only `limit` where /proc does not say)."""

    def __init__(self, pid: int, limit: float):
        self.pid, self.limit = pid, limit
        self.cpu_start = cpu_seconds(pid)
        self.wall_start = time.monotonic()
        self.wall_limit = limit if self.cpu_start is None else limit * WALL_FACTOR

    def remaining(self) -> float:
        """Seconds before the limit is reached, at the child's full speed; <= 0: reached."""
        wall = self.wall_limit - (time.monotonic() - self.wall_start)
        cpu = cpu_seconds(self.pid) if self.cpu_start is not None else None
        if cpu is None:
            return wall
        return min(self.limit - (cpu - self.cpu_start), wall)

    def spent(self) -> str:
        cpu = cpu_seconds(self.pid) if self.cpu_start is not None else None
        if cpu is not None and cpu - self.cpu_start >= self.limit:
            return f"{self.limit:g} s of CPU time"
        return f"{self.wall_limit:g} s"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` from /proc, or None where it cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the name may hold spaces
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _receive(stream: BinaryIO, remaining: Callable[[], float] | None = None) -> Any:
    """One message; `remaining()` gives the seconds left to wait for it (TimeoutError at 0)."""
    header = _read_exactly(stream, _LENGTH.size, remaining)
    return pickle.loads(_read_exactly(stream, _LENGTH.unpack(header)[0], remaining))


def _read_exactly(stream: BinaryIO, size: int, remaining: Callable[[], float] | None) -> bytes:
    chunks = []
    fd = stream.fileno()
    while size:
        while remaining is not None:  # the budget may grow back while the child waits for CPU
            left = remaining()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                break
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
    """Child loop: say "ready" (or ("failed", message) when the function's import or warm-up
    fails), then read (html, url), answer ("ok", text) or ("error", message).

    The warm-up extraction pays for lazy imports and set-up (trafilatura's first call) before
    "ready", so they do not count against the first document's time limit.
    """
    module, _, name = function.partition(":")
    stdin = sys.stdin.buffer
    # the protocol keeps its own copy of file descriptor 1, which then goes to stderr: a stray
    # print, a C library's printf or a subprocess must not corrupt it
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        extract = getattr(importlib.import_module(module), name)
        extract(_WARM_UP_PAGE, None, options)
    except Exception as err:  # noqa: BLE001 (said to the parent, which names it)
        said = " ".join(f"{type(err).__name__}: {err}".split())  # one line (numpy's are many)
        _send(stdout, ("failed", said[:1000]))
        return
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
