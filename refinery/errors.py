"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""


class RefineryError(Exception):
    """Bad input, config or run folder, explained in the message."""
