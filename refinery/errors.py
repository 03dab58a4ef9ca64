"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""

import errno
import sys
from collections.abc import Callable

# Operating-system errors on a path the user named that the user can fix (a read-only or full
# disk, no permission, a file where a folder belongs): one line, not a traceback. Others, a
# missing file among them, are left to the code that knows what the path was for.
_USER_FIXABLE = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
}


class RefineryError(Exception):
    """Bad input, config or run folder, explained in the message."""


def user_message(err: BaseException) -> str | None:
    """The one line to print for an error the user can fix, or None (a bug: the traceback
    is what helps then)."""
    if isinstance(err, RefineryError):
        return str(err)
    if isinstance(err, OSError) and err.errno in _USER_FIXABLE and err.filename:
        return f"{err.filename}: {err.strerror}"
    return None


def with_user_errors(entry: Callable[[], int], prefix: str = "error") -> int:
    """`entry()` for a command's entry point: an error the user can fix is one line on
    stderr, `prefix: message`, and exit status 2; any other error raises, traceback and all."""
    try:
        return entry()
    except Exception as err:
        message = user_message(err)
        if message is None:
            raise
        print(f"{prefix}: {message}", file=sys.stderr)
        return 2


def unreadable_file(path) -> str:
    """Why `path` (a pathlib.Path that is not a file) cannot be read: for an error message."""
    return "is a folder, not a file" if path.is_dir() else "file not found"
