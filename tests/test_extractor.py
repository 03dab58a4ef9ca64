import functools
import os
import time

import pytest

from curation.config import TrafilaturaConfig
from curation.extractor import (
    WALL_FACTOR,
    ExtractorStartError,
    TimeLimitedExtractor,
    cpu_seconds,
)

from extract_helpers import slow_on_marker


@functools.cache
def _set_up() -> None:
    time.sleep(1.0)  # like trafilatura's imports and first call on a busy worker


def slow_to_start(html, url, options):
    """slow_on_marker behind a slow first call; the child runs it as test_extractor:..."""
    _set_up()
    return slow_on_marker(html, url, options)


def test_real_trafilatura_extracts_main_text_without_boilerplate():
    article = " ".join(
        f"Sentence {i} of the article explains how the river shaped the old town and its trade."
        for i in range(30)
    )
    html = (
        "<html><body><nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav>"
        f"<article><h1>The river town</h1><p>{article}</p></article>"
        "<footer>Copyright 2024 Example Media. All rights reserved. Cookie policy.</footer>"
        "</body></html>"
    )
    with TimeLimitedExtractor(TrafilaturaConfig(), timeout=30) as extractor:
        result = extractor.extract(html, "https://news.example/river")
    assert result.status == "ok"
    assert "Sentence 29 of the article" in result.text
    assert "All rights reserved" not in result.text
    assert "About us" not in result.text


NEEDS_PROC = pytest.mark.skipif(cpu_seconds(os.getpid()) is None, reason="needs Linux /proc")


def warm_then_time(extractor: TimeLimitedExtractor, page: str):
    """(result, wall seconds) of `page`, after a warm-up document."""
    assert extractor.extract("<p>warm up</p>", "u0").text == "text of u0"
    started = time.monotonic()
    result = extractor.extract(page, "u1")
    return result, time.monotonic() - started


@NEEDS_PROC
def test_timeout_kills_the_child_and_the_next_document_still_works():
    extractor = TimeLimitedExtractor(
        TrafilaturaConfig(), timeout=1.0, function="extract_helpers:slow_on_marker"
    )
    with extractor:
        result, elapsed = warm_then_time(extractor, "<p>SLOW</p>")
        assert result.status == "timeout"
        assert result.message == "extraction exceeded 1 s of CPU time"
        assert 0.9 <= elapsed < 10  # the CPU second, on a loaded machine maybe more wall time
        assert extractor.restarts == 1
        assert extractor.extract("<p>fine</p>", "u2").text == "text of u2"


@NEEDS_PROC
def test_the_limit_counts_cpu_time_and_a_waiting_child_stops_at_the_wall_cap():
    """A loaded machine slows the wall clock, not the CPU seconds a page costs."""
    extractor = TimeLimitedExtractor(
        TrafilaturaConfig(), timeout=0.3, function="extract_helpers:slow_on_marker"
    )
    with extractor:
        result, elapsed = warm_then_time(extractor, "<p>STUCK</p>")
    assert result.message == f"extraction exceeded {0.3 * WALL_FACTOR:g} s"
    assert 0.3 * WALL_FACTOR <= elapsed < 0.3 * WALL_FACTOR + 5


@NEEDS_PROC
def test_cpu_seconds_reads_a_process_of_its_own():
    spent = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > spent
    assert cpu_seconds(2**22 + 7) is None  # no such process


def test_crash_and_exception_are_reported_per_document():
    extractor = TimeLimitedExtractor(
        TrafilaturaConfig(), timeout=10, function="extract_helpers:crash_on_marker"
    )
    with extractor:
        crashed = extractor.extract("<p>CRASH</p>", "u1")
        assert crashed.status == "error" and "died" in crashed.message
        raised = extractor.extract("<p>RAISE</p>", "u2")
        assert raised.status == "error"
        assert raised.message == "ValueError: cannot parse this page"
        assert extractor.extract("<p>ok</p>", "u3").text == "text of u3"


def test_start_up_does_not_count_against_the_time_limit():
    extractor = TimeLimitedExtractor(
        TrafilaturaConfig(), timeout=0.5, function="test_extractor:slow_to_start"
    )
    with extractor:
        assert extractor.extract("<p>first</p>", "u0").text == "text of u0"
        assert extractor.extract("<p>SLOW</p>", "u1").status == "timeout"
        assert extractor.restarts == 1
        assert extractor.extract("<p>after the restart</p>", "u2").text == "text of u2"


@pytest.mark.parametrize(
    ("function", "start_timeout", "problem"),
    [
        ("test_extractor:slow_to_start", 0.2, "did not start within 0.2 s"),
        ("extract_helpers:dies_warming_up", 60, r"exited while starting \(4\)"),
        # said with its cause and where: it was "exited while starting (1); see its stderr",
        # the stderr of an executor on another host
        (
            "extract_helpers:no_such_function",
            60,
            r"could not start \(on host .+, working folder .+\): AttributeError: module "
            "'extract_helpers' has no attribute 'no_such_function'",
        ),
        (
            "no_such_module:extract",
            60,
            "could not start .*: ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (  # its own writes to fd 1 no longer corrupt the protocol; the error is one line
            "extract_helpers:prints_while_loading",
            60,
            "could not start .*: ImportError: IMPORTANT: PLEASE READ THIS the C extension",
        ),
    ],
)
def test_a_child_that_cannot_start_is_an_error_not_a_timeout(function, start_timeout, problem):
    extractor = TimeLimitedExtractor(
        TrafilaturaConfig(), timeout=10, function=function, start_timeout=start_timeout
    )
    with extractor, pytest.raises(ExtractorStartError, match=problem):
        extractor.extract("<p>page</p>", "u0")
    assert extractor.restarts == 0
