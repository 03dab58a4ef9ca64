"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""


class RefineryError(Exception):
    """Bad input, config or run folder, explained in the message."""


def unreadable_file(path) -> str:
    """Why `path` (a pathlib.Path that is not a file) cannot be read: for an error message."""
    return "is a folder, not a file" if path.is_dir() else "file not found"
