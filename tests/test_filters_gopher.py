import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.filters.gopher import (
    GopherQualityConfig,
    GopherQualityFilter,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
    repeated_ngram_chars,
    top_ngram_chars,
)
from refinery.config import ConfigError


def unique(n: int, start: int = 0) -> list[str]:
    """`n` distinct six-letter words: no n-gram of them repeats."""
    letters = "abcdefghij"
    return ["".join(letters[int(d)] for d in f"{i:06d}") for i in range(start, start + n)]


def quality(text: str, lang: str | None = "de", **config) -> str | None:
    """Gopher quality on `text`; German by default, so the English stop-word rule is off."""
    doc = {"text": text, "lang": lang}
    return GopherQualityFilter(GopherQualityConfig(**config)).filter(doc)


# --- Gopher quality -------------------------------------------------------------------------


def test_word_count_bounds():
    assert quality(" ".join(unique(50))) is None
    assert quality(" ".join(unique(49))) == "gopher_quality:min_words"
    assert quality(" ".join(unique(60)), max_words=60) is None
    assert quality(" ".join(unique(61)), max_words=60) == "gopher_quality:max_words"


def test_default_max_words_on_one_very_long_line():
    words = unique(100_000)
    assert quality(" ".join(words)) is None
    assert quality(" ".join(words + ["abcdef"])) == "gopher_quality:max_words"


def test_empty_and_blank_text_have_too_few_words():
    assert quality("") == "gopher_quality:min_words"
    assert quality(" \n\n\t ") == "gopher_quality:min_words"


def test_mean_word_length_bounds():
    assert quality(" ".join(["abc"] * 50)) is None  # mean 3.0
    assert quality(" ".join(["abc"] * 49 + ["ab"])) == "gopher_quality:mean_word_length"
    assert quality(" ".join(["abcdefghij"] * 50)) is None  # mean 10.0
    assert quality(" ".join(["abcdefghij"] * 49 + ["abcdefghijk"])) == (
        "gopher_quality:mean_word_length"
    )


def test_mean_word_length_counts_characters_not_bytes():
    assert quality(" ".join(["日本語"] * 50)) is None  # 3 characters, 9 UTF-8 bytes


def test_hash_ratio():
    words = unique(50)
    assert quality(" ".join(["#" + w for w in words[:5]] + words[5:])) is None  # 5 / 50
    assert quality(" ".join(["#" + w for w in words[:6]] + words[6:])) == (
        "gopher_quality:hash_ratio"
    )


def test_ellipsis_ratio_counts_both_spellings():
    words = unique(50)
    marked = [w + "..." for w in words[:3]] + [w + "…" for w in words[3:5]]
    assert quality(" ".join(marked + words[5:])) is None  # 5 / 50
    assert quality(" ".join(marked + ["x…" + words[5]] + words[6:])) == (
        "gopher_quality:ellipsis_ratio"
    )


def lines_of(words: list[str], per_line: int = 5) -> list[str]:
    return [" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line)]


def test_bullet_lines():
    lines = lines_of(unique(50))  # 10 lines
    bulleted = ["• " + line for line in lines[:9]] + lines[9:]
    assert quality("\n".join(bulleted)) is None  # 0.9
    assert quality("\n".join("- " + line for line in lines)) == "gopher_quality:bullet_lines"


def test_bullet_fraction_ignores_blank_lines_and_indentation():
    lines = ["  * " + line for line in lines_of(unique(50))]
    assert quality("\n\n".join(lines)) == "gopher_quality:bullet_lines"
    assert quality("\n\n".join(lines[:9] + ["plain " + lines[9]])) is None


def test_ellipsis_lines():
    lines = lines_of(unique(60), per_line=6)  # 10 lines
    trailing = [line + "..." for line in lines[:3]] + lines[3:]
    assert quality("\n".join(trailing)) is None  # 0.3
    trailing = [line + " …" for line in lines[:4]] + lines[4:]
    assert quality("\n".join(trailing)) == "gopher_quality:ellipsis_lines"


def test_alpha_words():
    words = unique(50)
    assert quality(" ".join(["1234"] * 10 + words[10:])) is None  # 40 / 50 have a letter
    assert quality(" ".join(["1234"] * 11 + words[11:])) == "gopher_quality:alpha_words"


def test_alpha_words_count_letters_of_any_script_but_not_digits_or_underscores():
    assert quality(" ".join(["привет"] * 25 + ["ciudad"] * 25)) is None
    assert quality(" ".join(["1_2"] * 11 + unique(39))) == "gopher_quality:alpha_words"
    assert quality(" ".join(["١٢٣"] * 11 + unique(39))) == "gopher_quality:alpha_words"


def test_markup_tokens_are_not_words():
    """Table rules and dashes that extraction leaves (`| a | b |`, `|---|`, ` — `) hold no
    letter or digit: they neither count as words nor as words without letters."""
    cells = unique(40)
    rows = [f"| {cells[i]} | {cells[i + 1]} |" for i in range(0, 40, 2)]
    table = "\n".join(["| --- | --- |", *rows])
    assert quality(english() + "\n" + table) is None
    assert quality(" ".join(["—"] * 11 + unique(45))) == "gopher_quality:min_words"


def english(*extra: str) -> str:
    return " ".join([*extra, *unique(50 - len(extra))])


def test_stop_words_need_two_distinct_ones_in_english():
    assert quality(english("the", "and"), lang="en") is None
    assert quality(english("the"), lang="en") == "gopher_quality:stop_words"
    assert quality(english("the", "the", "the"), lang="en") == "gopher_quality:stop_words"
    assert quality(english("the", "The.", "(the)"), lang="en") == "gopher_quality:stop_words"


def test_stop_words_ignore_case_and_surrounding_punctuation():
    assert quality(english("The", "(with,"), lang="en") is None
    assert quality(english('"that"', "HAVE."), lang="en") is None
    assert quality(english("the-and", "bet"), lang="en") == "gopher_quality:stop_words"


def test_stop_words_apply_to_english_only_by_default():
    assert quality(english(), lang="de") is None
    assert quality(english(), lang="zh") is None
    # No language step: documents are taken as English.
    assert quality(english(), lang=None) == "gopher_quality:stop_words"


def test_stop_words_per_language():
    german = {"de": ["der", "die", "und", "das"]}
    assert quality(english("der", "und"), lang="de", stop_words=german) is None
    assert quality(english("the", "and"), lang="de", stop_words=german) == (
        "gopher_quality:stop_words"
    )
    assert quality(english(), lang="en", stop_words=german) is None  # English no longer listed
    assert quality(english("der"), lang="de", stop_words=german, min_stop_words=1) is None


def test_quality_config_validation():
    with pytest.raises(ConfigError, match="min_words"):
        GopherQualityConfig(min_words=0)
    with pytest.raises(ConfigError, match="max_words"):
        GopherQualityConfig(min_words=100, max_words=99)
    with pytest.raises(ConfigError, match="max_mean_word_length"):
        GopherQualityConfig(min_mean_word_length=5, max_mean_word_length=4)
    with pytest.raises(ConfigError, match="min_alpha_word_fraction"):
        GopherQualityConfig(min_alpha_word_fraction=1.5)
    with pytest.raises(ConfigError, match="stop_words.fr"):
        GopherQualityConfig(stop_words={"fr": ["le", "le"]})
    with pytest.raises(ConfigError, match="bullets"):
        GopherQualityConfig(bullets=["-", ""])


# --- Gopher repetition ----------------------------------------------------------------------


def only(**limits: float) -> GopherRepetitionConfig:
    """Every repetition rule off (limit 1.0) except the ones named."""
    off = {f.name: 1.0 for f in dataclasses.fields(GopherRepetitionConfig)}
    return GopherRepetitionConfig(**(off | limits))


def repetition(text: str, config: GopherRepetitionConfig | None = None) -> str | None:
    return GopherRepetitionFilter(config).filter({"text": text})


def ten_lines_with_copies(copies: int, sep: str = "\n") -> str:
    lines = lines_of(unique(40), per_line=4)  # 10 distinct lines of equal length
    return sep.join(lines[: 10 - copies] + lines[:copies])


def test_duplicate_line_fraction():
    config = only(max_dup_line_fraction=0.3)
    assert repetition(ten_lines_with_copies(3), config) is None
    assert repetition(ten_lines_with_copies(4), config) == "gopher_repetition:dup_line_fraction"


def test_duplicate_line_char_fraction():
    config = only(max_dup_line_char_fraction=0.2)
    assert repetition(ten_lines_with_copies(2), config) is None
    assert repetition(ten_lines_with_copies(3), config) == (
        "gopher_repetition:dup_line_char_fraction"
    )


def test_duplicate_paragraph_fractions():
    config = only(max_dup_para_fraction=0.3)
    assert repetition(ten_lines_with_copies(3, "\n\n"), config) is None
    assert repetition(ten_lines_with_copies(4, "\n \n"), config) == (
        "gopher_repetition:dup_para_fraction"
    )
    config = only(max_dup_para_char_fraction=0.2)
    assert repetition(ten_lines_with_copies(2, "\n\n\n"), config) is None
    assert repetition(ten_lines_with_copies(3, "\r\n\r\n"), config) == (
        "gopher_repetition:dup_para_char_fraction"
    )


def test_paragraphs_are_blocks_between_blank_lines():
    block = "\n".join(lines_of(unique(12, 100), per_line=4))
    others = ["\n".join(lines_of(unique(12, 200 + 20 * i), per_line=4)) for i in range(3)]
    config = only(max_dup_para_fraction=0.3)
    # 1 repeated paragraph of 5: 0.2, though each of its 3 lines repeats too.
    assert repetition("\n\n".join([block, *others, block]), config) is None
    assert repetition("\n\n".join([block, *others[:2], block, block]), config) == (
        "gopher_repetition:dup_para_fraction"
    )


def test_blank_lines_are_not_duplicates():
    text = "\n\n\n\n".join(lines_of(unique(40), per_line=4))
    assert repetition(text) is None


def test_duplicate_lines_of_any_script_count_their_characters():
    lines = ["这是第一行文字内容", "第二行完全不同的话", "再来一行新的句子呢", "最后一行也是新的"]
    assert repetition("\n".join(lines + lines[:1]), only(max_dup_line_char_fraction=0.3)) is None
    assert repetition("\n".join(lines + lines[:2]), only(max_dup_line_char_fraction=0.3)) == (
        "gopher_repetition:dup_line_char_fraction"
    )


def with_ngram(n: int, times: int, total: int = 50) -> str:
    """`total` words, one line, where the n-gram of "zzzzzz" words... occurs `times` times,
    each occurrence apart from the others, every other word unique."""
    words = unique(total)
    gram = [f"zzzzz{i}" for i in range(n)]
    for k in range(times):
        start = k * (total // times)
        words[start : start + n] = gram
    return " ".join(words)


@pytest.mark.parametrize(
    ("n", "limit", "kept", "rejected"),
    [(2, 0.20, 5, 6), (3, 0.18, 3, 4), (4, 0.16, 2, 3)],  # n * times / 50 words
)
def test_top_ngram_char_fraction(n, limit, kept, rejected):
    config = only(**{f"max_top_{n}gram_char_fraction": limit})
    assert repetition(with_ngram(n, kept), config) is None
    assert repetition(with_ngram(n, rejected), config) == f"gopher_repetition:top_{n}gram"


def test_top_ngram_defaults_name_the_first_rule_that_fires():
    assert repetition(with_ngram(2, 6)) == "gopher_repetition:top_2gram"
    assert repetition(with_ngram(2, 5)) is None


def ngram_chars(measure, words: list[str], n: int) -> int:
    """`measure` (top_ngram_chars or repeated_ngram_chars) on `words`."""
    offsets = [0]
    for word in words:
        offsets.append(offsets[-1] + len(word))
    return measure(words, n, offsets)


def test_top_ngram_counts_overlapping_occurrences_once():
    assert ngram_chars(top_ngram_chars, ["ha"] * 4, 2) == 8  # ("ha", "ha") 3 times in 4 words
    assert ngram_chars(top_ngram_chars, ["ab", "cd"] * 3, 2) == 12  # 3 disjoint "ab cd"
    assert ngram_chars(top_ngram_chars, ["a", "b", "a", "b", "a", "x"], 3) == 5  # "a b a" twice


def test_top_ngram_without_a_repeat_covers_nothing():
    assert ngram_chars(top_ngram_chars, unique(10), 2) == 0
    assert ngram_chars(top_ngram_chars, unique(1), 2) == 0


def test_frequent_words_that_never_form_the_ngram_are_not_rejected():
    # "zzzzz0" and "zzzzz1" cover 0.24 of the characters together, but never side by side.
    words = unique(50)
    for k in range(6):
        words[8 * k], words[8 * k + 3] = "zzzzz0", "zzzzz1"
    assert repetition(" ".join(words), only(max_top_2gram_char_fraction=0.2)) is None


def covered_reference(words: list[str], n: int, starts: list[int]) -> int:
    """Characters of the words at positions inside any n-word span at `starts`."""
    inside = {i for start in starts for i in range(start, start + n)}
    return sum(len(words[i]) for i in inside)


def top_reference(words: list[str], n: int) -> int:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    times = max(grams.count(g) for g in grams)
    top = next(g for g in grams if grams.count(g) == times)
    if times < 2:
        return 0
    return covered_reference(words, n, [i for i, g in enumerate(grams) if g == top])


def repeated_reference(words: list[str], n: int) -> int:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return covered_reference(words, n, [i for i, g in enumerate(grams) if g in grams[:i]])


SMALL_TEXTS = st.lists(st.sampled_from(["a", "bb", "ccc", "a."]), max_size=40)


@settings(derandomize=True)  # the same examples on every run
@given(SMALL_TEXTS, st.integers(min_value=2, max_value=10))
def test_ngram_measures_match_their_definitions(words, n):
    assert ngram_chars(top_ngram_chars, words, n) == top_reference(words, n)
    assert ngram_chars(repeated_ngram_chars, words, n) == repeated_reference(words, n)


@settings(derandomize=True)  # the same examples on every run
@given(SMALL_TEXTS)
def test_repetition_decision_matches_the_rules_taken_one_by_one(words):
    config = only(
        max_top_2gram_char_fraction=0.5,
        max_top_3gram_char_fraction=0.45,
        max_top_4gram_char_fraction=0.4,
        max_dup_5gram_char_fraction=0.6,
        max_dup_6gram_char_fraction=0.55,
        max_dup_7gram_char_fraction=0.5,
        max_dup_8gram_char_fraction=0.45,
        max_dup_9gram_char_fraction=0.4,
        max_dup_10gram_char_fraction=0.35,
    )
    total = len(" ".join(words))  # fractions of the whole text, spaces included (DataTrove)
    expected = None
    for n in range(2, 11):
        kind, measure = ("top", top_reference) if n < 5 else ("dup", repeated_reference)
        if total and measure(words, n) / total > getattr(
            config, f"max_{kind}_{n}gram_char_fraction"
        ):
            expected = f"gopher_repetition:{kind}_{n}gram"
            break
    assert repetition(" ".join(words), config) == expected


def repeated_phrase(length: int, total: int = 100) -> str:
    """`total` unique words with the first `length` of them repeated once at the end."""
    words = unique(total - length)
    return " ".join(words + words[:length])


def test_duplicate_10gram_default_boundary():
    # 100 words of 6 letters and 99 spaces: 699 characters, the denominator, as in DataTrove.
    # A repeated 11-gram covers 66 of them (0.094): under every limit.
    assert repetition(repeated_phrase(11)) is None
    # A repeated 12-gram covers 0.103: under the 5..9-gram limits, over the 10-gram one.
    assert repetition(repeated_phrase(12)) == "gopher_repetition:dup_10gram"


@pytest.mark.parametrize(
    ("n", "limit"), [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)]
)
def test_duplicate_ngram_char_fraction(n, limit):
    config = only(**{f"max_dup_{n}gram_char_fraction": limit})
    kept = int(limit * 699 / 6)  # repeated 6-letter words of 699 characters
    assert repetition(repeated_phrase(kept), config) is None
    assert repetition(repeated_phrase(kept + 1), config) == f"gopher_repetition:dup_{n}gram"


def test_duplicate_ngrams_count_every_copy_after_the_first_and_overlaps_once():
    words = unique(5) * 3  # period 5: the copies cover words 5..14
    assert ngram_chars(repeated_ngram_chars, words, 5) == 60
    assert ngram_chars(repeated_ngram_chars, words, 10) == 60  # the 10-gram at 5 repeats 0's
    assert ngram_chars(repeated_ngram_chars, words, 11) == 0
    assert ngram_chars(repeated_ngram_chars, unique(15), 5) == 0


def test_repetition_keeps_empty_and_short_text():
    assert repetition("") is None
    assert repetition("   \n\n  ") is None
    assert repetition("one") is None


def test_repetition_on_a_very_long_line_of_distinct_words():
    assert repetition(" ".join(unique(200_000))) is None


def test_repetition_config_validation():
    with pytest.raises(ConfigError, match="max_top_2gram_char_fraction"):
        GopherRepetitionConfig(max_top_2gram_char_fraction=1.2)
    with pytest.raises(ConfigError, match="max_dup_line_fraction"):
        GopherRepetitionConfig(max_dup_line_fraction=-0.1)


def test_emoji_and_symbols_count_against_the_alpha_word_fraction():
    """A page of emoji between its words: left out of the fraction as markup, they could
    never fail it (the paper: 80% of words hold a letter; DataTrove counts every word)."""
    words = unique(60)  # 50 words are the minimum: emoji are no words for that count
    emoji = ["🌊", "✨", "★", "😂"] * 4  # 16 of 76 words: 0.79
    assert quality(" ".join(words + emoji)) == "gopher_quality:alpha_words"
    assert quality(" ".join(words + emoji[:12])) is None  # 12 of 72: 0.83
    dashes = ["—", "|", "|---|", "-"] * 4  # punctuation and table rules still are not words
    assert quality(" ".join(words + dashes)) is None
