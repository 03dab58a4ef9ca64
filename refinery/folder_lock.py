"""One job at a time in a run folder: an exclusive lock on `<folder>/.lock`.

A POSIX record lock (`fcntl.lockf`): released when the process dies, however it dies, so no
stale lock outlives a killed job; shared within one process (a job takes it once). NFS
serves such locks through its lock manager. A filesystem that serves none is said on stderr,
and the job goes on unguarded, rather than being refused as if the folder were in use.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import sys
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Path, error: type[Exception], job: str, flag: str) -> Iterator[None]:
    """Create `folder` and hold its lock while the body runs; raise `error` at once when
    another `job` holds it (`flag`: the option that names another folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    with open(lock, "a") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                print(
                    f"warning: {lock}: cannot lock it ({err.strerror}); a second {job} on "
                    f"{folder} would not be refused",
                    file=sys.stderr,
                )
            else:
                raise error(
                    f"{folder} is in use by another {job} (it holds {lock}): wait for it to "
                    f"end, or choose another {flag}"
                ) from None
        yield
