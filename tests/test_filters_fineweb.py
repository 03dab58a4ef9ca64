import pytest

from curation.filters.fineweb import FineWebConfig, FineWebFilter
from refinery.config import ConfigError


def unique_line(i: int, words: int = 6) -> str:
    """A distinct line of `words` six-letter words (41 characters for 6 words)."""
    letters = "abcdefghij"
    return " ".join("".join(letters[int(d)] for d in f"{i * words + k:06d}") for k in range(words))


def fineweb(lines: list[str], lang: str | None = "en", **config) -> str | None:
    return FineWebFilter(FineWebConfig(**config)).filter({"text": "\n".join(lines), "lang": lang})


def test_prose_is_kept():
    assert fineweb([unique_line(i) + "." for i in range(20)]) is None


def test_line_punct_ratio_boundary():
    """DataTrove's boundaries: rejected at <= 0.12 (here and for >= 0.67 and >= 0.01 below)."""
    lines = [unique_line(i) for i in range(25)]
    assert fineweb([line + "." for line in lines[:4]] + lines[4:]) is None  # 4 / 25 = 0.16
    assert fineweb([line + "!" for line in lines[:3]] + lines[3:]) == "fineweb:line_punct_ratio"


def test_line_punct_counts_other_scripts_and_quotes():
    lines = [unique_line(i) for i in range(10)]
    assert fineweb([lines[0] + "。", *lines[1:]]) == "fineweb:line_punct_ratio"  # 0.1
    assert fineweb([lines[0] + "。", lines[1] + " ।", *lines[2:]]) is None
    assert fineweb([lines[0] + '"', lines[1] + "…", *lines[2:]]) is None
    assert fineweb([lines[0] + ".“", lines[1] + "?«", *lines[2:]], lang="de") is None  # „Nein.“


def test_line_punct_per_language():
    lines = [unique_line(i) + "." for i in range(10)]
    only_bang = {"xx": ["!"]}
    assert fineweb(lines, lang="xx", terminal_punctuation_by_language=only_bang) == (
        "fineweb:line_punct_ratio"
    )
    assert fineweb(lines, lang="en", terminal_punctuation_by_language=only_bang) is None


def short_and_long(short: int, total: int = 100) -> list[str]:
    """`total` distinct lines ending in "."; `short` of them exactly 30 characters, the rest 31."""
    return [unique_line(i, words=5)[: 29 if i < short else 30] + "." for i in range(total)]


def test_short_line_ratio_boundary():
    assert fineweb(short_and_long(66)) is None
    assert fineweb(short_and_long(67)) == "fineweb:short_line_ratio"
    assert fineweb(short_and_long(67), short_line_max_chars=29) is None


def test_dup_line_char_ratio_boundary():
    lines = [unique_line(i) + "." for i in range(101)]  # equal lengths
    assert fineweb(lines[:101]) is None
    assert fineweb(lines[:99] + lines[:1]) == "fineweb:dup_line_char_ratio"  # 1 / 100


def test_newline_word_ratio_boundary():
    line = "abcdefghijklmnopq rstuvwxyzabcdef."  # 2 words, 34 characters
    padded = "abcdefghijklmnopq rstuvwxyzabcd efgh."  # 3 words
    # 3 newlines: 10 words -> 0.3 kept, 9 words -> 0.33 rejected.
    assert fineweb([padded, padded.upper(), line, line.title()]) is None
    assert fineweb([padded, line.upper(), line, line.title()]) == "fineweb:newline_word_ratio"


def test_blank_lines_count_as_newlines_but_not_as_lines():
    lines = [unique_line(i) + "." for i in range(4)]  # 24 words
    assert fineweb(["\n".join(lines)]) is None
    assert fineweb(["\n\n\n".join(lines)]) == "fineweb:newline_word_ratio"  # 9 / 24


def test_empty_text_is_rejected():
    assert fineweb([""]) == "fineweb:line_punct_ratio"
    assert fineweb([" ", "\t"]) == "fineweb:line_punct_ratio"


def test_very_long_line():
    assert fineweb([" ".join(["word"] * 100_000) + "."]) is None


def test_fineweb_config_validation():
    with pytest.raises(ConfigError, match="min_line_punct_ratio"):
        FineWebConfig(min_line_punct_ratio=2)
    for key, end in [("min_line_punct_ratio", 1), ("max_short_line_ratio", 0)]:
        with pytest.raises(ConfigError, match=f"{key} = {end} would reject every page"):
            FineWebConfig(**{key: end})
    with pytest.raises(ConfigError, match="max_dup_line_char_ratio = 0 would reject every page"):
        FineWebConfig(max_dup_line_char_ratio=0)
    with pytest.raises(ConfigError, match="short_line_max_chars"):
        FineWebConfig(short_line_max_chars=-1)
    with pytest.raises(ConfigError, match="terminal_punctuation"):
        FineWebConfig(terminal_punctuation=[])
