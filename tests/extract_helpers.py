"""Stand-in extraction functions run inside the extractor's child process in tests."""

import os
import time


def slow_on_marker(html, url, options):
    """Spins on pages containing SLOW (like trafilatura in lxml on a pathological page), and
    waits without computing on pages containing STUCK."""
    if "SLOW" in html:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pass
    if "STUCK" in html:
        time.sleep(60)
    return f"text of {url}"


def crash_on_marker(html, url, options):
    """Dies on pages containing CRASH (like a segfault inside lxml)."""
    if "CRASH" in html:
        os._exit(3)
    if "RAISE" in html:
        raise ValueError("cannot parse this page")
    return f"text of {url}"


def dies_warming_up(html, url, options):
    """Dies on its first page, the warm-up (a crash inside a library as it loads)."""
    os._exit(4)


def prints_while_loading(html, url, options):
    """Writes to file descriptor 1 itself, as a C library's printf would, then raises an
    error of many lines (numpy's, when its C extension will not load)."""
    os.write(1, b"\x00\x00\x00\x00\x00\x00\x00\x01garbage from a C library\n")
    raise ImportError("\n\nIMPORTANT: PLEASE READ THIS\n\nthe C extension failed to load")
