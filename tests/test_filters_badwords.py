import unicodedata

import pytest

from curation.config import FilterConfig
from curation.filters.badwords import BadWordsConfig, BadWordsFilter, SubstringList, WordList
from curation.filters.chain import unlisted_language_warning
from curation.filters.language import LanguageConfig
from refinery.config import ConfigError

from conftest import shared_data


def test_word_boundaries_case_and_phrases():
    words = WordList(["ass", "ball gag", "2 girls 1 cup", "f-word"])
    assert words.hits("Class assignments pass.") == 0
    assert words.hits("ASS, ass! (ass)") == 3
    assert words.hits("a Ball\n  GAG here") == 1
    assert words.hits("2 girls\t1 cup") == 1
    assert words.hits("the F word, the f-word") == 2
    assert words.hits("") == 0
    # the longest entry at a place, without overlaps: a phrase is not its word too
    overlapping = WordList(["rape", "date rape", "girl on", "girl on top", "shit", "piece of shit"])
    assert overlapping.found("a date rape drug") == {("date", "rape"): 1}
    assert overlapping.found("girl on top; girl on; rape") == {
        ("girl", "on", "top"): 1,
        ("girl", "on"): 1,
        ("rape",): 1,
    }
    assert overlapping.found("piece of shit, shit") == {("piece", "of", "shit"): 1, ("shit",): 1}


def test_ampersand_entries_are_one_word_and_symbol_entries_count_where_they_stand():
    words = WordList(["s&m", "🖕", "da's kloten"])
    assert words.hits("The company's M&A team met Mr. S. M. Smith.") == 0
    assert words.hits("S&M clubs; s&m") == 2
    assert words.hits("🖕🖕 to you, 🖕") == 3
    assert WordList(["🖕", "🖕🖕"]).found("🖕🖕 to you, 🖕") == {("🖕🖕",): 1, ("🖕",): 1}
    assert words.hits("da's kloten, Da ’s kloten") == 2


def test_unicode_lists():
    words = WordList(["сука", "шлюха"])
    assert words.hits("Сука! шлюхами") == 1  # inflected forms are other words


def test_vowel_signs_and_decomposed_accents_stay_in_their_word():
    """`\\w` alone cut a word at each combining mark: "चूत" was "च", "त", which "चित" (mind)
    matched, and a decomposed "enculé" was "encule" and a lone accent."""
    words = WordList(["चूत", "enculé"])
    assert words.hits("चित और मन") == 0
    assert words.hits("यह चूत है") == 1
    assert words.hits(unicodedata.normalize("NFD", "Quel enculé !")) == 1
    assert words.hits("Quel encule") == 0
    adlam = WordList(["\U0001e922\U0001e944\U0001e923"])  # a mark past the basic plane
    assert adlam.hits("\U0001e922 \U0001e923") == 0
    assert adlam.hits("x \U0001e922\U0001e944\U0001e923 y") == 1


def test_languages_written_without_spaces_match_substrings_and_count_letters(tmp_path):
    (tmp_path / "zh").write_text("色情\n淫秽\n")
    (tmp_path / "ja").write_text("エロ\n")
    step = BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path)))
    page = "这个网站提供色情内容和淫秽图片。" * 3  # one whitespace "word", 45 letters
    assert step.found(page, "zh") == {("色情",): 3, ("淫秽",): 3}
    assert step.filter({"text": page, "lang": "zh"}) == "badwords"
    # one mention in a long article: 2 hits in 600 letters is under 5 per 1,000
    article = "色情片的管制是一个法律问题。" + "政府发布了新的规定和说明文件。" * 40 + "淫秽"
    assert step.filter({"text": article, "lang": "zh"}) is None
    assert step.found("エロ本とエロ漫画", "ja") == {("エロ",): 2}


def test_substrings_take_the_longest_entry_without_overlaps_and_latin_ones_stand_alone():
    """One word is one hit: 色情片 counted as 色情 too met min_distinct on its own."""
    entries = SubstringList(["色情", "色情片", "sm", "3p", "グロ", "性", "奶"])
    assert entries.found("色情片的管制。色情") == {("色情片",): 1, ("色情",): 1}
    assert entries.found("smartphone 3px 小型sm，SM 3P") == {("sm",): 2, ("3p",): 1}
    assert entries.found("グローバルなグロ画像、エログロ、エロ・グロ") == {("グロ",): 2}
    assert entries.found("女性的可能性和牛奶") == {}  # one-letter entries are left out
    assert SubstringList([]).found("色情") == {}


def lists(tmp_path):
    (tmp_path / "en").write_text("badword\nvery bad phrase\n")
    (tmp_path / "de").write_text("schlimm\n")
    (tmp_path / "README.md").write_text("not a list\n")
    return str(tmp_path)


def doc(hits, words, lang=None, word="badword"):
    return {"text": " ".join([word] * hits + ["fine"] * (words - hits)), "lang": lang}


def test_density_threshold_on_both_sides(tmp_path):
    config = BadWordsConfig(lists_dir=lists(tmp_path), min_distinct=1)
    step = BadWordsFilter.from_config(config)
    assert set(step.lists) == {"en", "de"}
    assert step.filter(doc(5, 1000)) is None  # exactly 5 per 1,000 words is kept
    assert step.filter(doc(6, 1000)) == "badwords"
    assert step.filter(doc(1, 199)) == "badwords"
    assert step.filter(doc(1, 200)) is None
    assert step.drain_counters()["badwords:hits"] == 13


def test_list_follows_the_document_language(tmp_path):
    step = BadWordsFilter.from_config(
        BadWordsConfig(lists_dir=lists(tmp_path), max_per_1000_words=0, min_distinct=1)
    )
    assert step.filter(doc(1, 10, lang="de")) is None  # English word, German list
    assert step.filter(doc(1, 10, lang="de", word="schlimm")) == "badwords"
    assert step.filter(doc(1, 10)) == "badwords"  # no lang: default English
    assert step.filter(doc(1, 10, lang="ja")) is None
    assert step.drain_counters()["badwords:no_list"] == 1
    assert step.filter({"text": "", "lang": "en"}) is None


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="max_per_1000_words must be >= 0"):
        BadWordsConfig(max_per_1000_words=-1)
    with pytest.raises(ConfigError, match="min_distinct must be >= 1, got 0"):
        BadWordsConfig(min_distinct=0)
    with pytest.raises(ConfigError, match="no folder .*nope"):
        BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path / "nope")))


def test_lists_named_with_txt_load_and_a_folder_without_lists_fails(tmp_path):
    (tmp_path / "en.txt").write_text("badword\n")
    (tmp_path / "fr-CA-u-sd-caqc").write_text("mot\n")
    for other in ("README.md", "notes.txt", "README"):
        (tmp_path / other).write_text("not a list\n")
    step = BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path)))
    assert set(step.lists) == {"en", "fr-CA-u-sd-caqc"}
    (tmp_path / "en").write_text("other\n")
    with pytest.raises(ConfigError, match=r"en and en.txt in .* are both the en list"):
        BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path)))
    (tmp_path / "en").unlink()
    (tmp_path / "fr-CA-u-sd-caqc").unlink()
    (tmp_path / "en.txt").unlink()
    with pytest.raises(ConfigError, match=r"holds no word lists \(files named by language"):
        BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path)))


def test_a_list_named_by_another_code_than_lid_176_gives_is_used(tmp_path):
    """LDNOOBW's Filipino list is `fil`; lid.176 tags Filipino pages `tl`."""
    (tmp_path / "fil").write_text("putang ina\nputa\n")
    step = BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(tmp_path), min_distinct=1))
    assert set(step.lists) == {"tl"}
    assert step.filter({"text": "puta " * 3, "lang": "tl"}) == "badwords"
    config = FilterConfig(
        steps=["language", "badwords"],
        language=LanguageConfig(languages=["tl"]),
        badwords=BadWordsConfig(lists_dir=str(tmp_path)),
    )
    assert unlisted_language_warning(config) is None


def test_kept_languages_without_a_list_are_said(tmp_path):
    (tmp_path / "en").write_text("badword\n")
    config = FilterConfig(
        steps=["language", "badwords"],
        language=LanguageConfig(languages=["en", "de"]),
        badwords=BadWordsConfig(lists_dir=str(tmp_path)),
    )
    assert "has no word list for de: those documents" in unlisted_language_warning(config)
    config.steps = ["badwords"]  # without the language step: the default language only
    assert unlisted_language_warning(config) is None
    assert unlisted_language_warning(FilterConfig()) is None  # the shipped lists


def test_shipped_and_ldnoobw_lists_load():
    shipped = BadWordsFilter.from_config(BadWordsConfig())
    assert {"en", "de", "es", "fr", "it", "nl", "pt", "ru"} <= set(shipped.lists)
    full = BadWordsFilter.from_config(BadWordsConfig(lists_dir=str(shared_data("badwords"))))
    assert sum(full.found("He said 2 girls 1 cup and then ASS.", "en").values()) == 2


def test_one_word_repeated_is_news_or_medicine_many_words_are_a_page_built_on_them():
    """Dutch "kanker" is cancer; a report on a rape trial repeats one word; a porn page uses
    many. The shipped lists and defaults."""
    step = BadWordsFilter.from_config(BadWordsConfig())
    cancer = "De patiënt heeft kanker . " * 20
    assert step.filter({"text": cancer, "lang": "nl"}) is None
    trial = "The court heard the rape case again today and the jury listened. " * 10
    assert step.filter({"text": trial, "lang": "en"}) is None
    page = "Free porn videos, hot milf and xxx clips. " * 10
    assert step.filter({"text": page, "lang": "en"}) == "badwords"
