import pickle

import pytest

from curation.config import FilterConfig
from curation.filters.chain import unspaced_language_warning
from curation.filters.language import LanguageConfig, LanguageFilter, check_languages
from refinery.config import ConfigError, from_dict

ENGLISH = "The committee published its annual report on the state of the river and the fish in it."
FRENCH = "Le comité a publié son rapport annuel sur l'état de la rivière et des poissons."
JAPANESE = "委員会は川とそこに住む魚の状態についての年次報告書を発表しました。"


@pytest.fixture(scope="module")
def step():
    return LanguageFilter(LanguageConfig())


def test_annotates_and_keeps_configured_languages(step):
    for text, lang in ((ENGLISH, "en"), (FRENCH, "fr")):
        doc = {"text": text}
        assert step.filter(doc) is None
        assert doc["lang"] == lang and 0.65 <= doc["lang_score"] <= 1.0


def test_rejects_other_languages_but_still_annotates(step):
    doc = {"text": JAPANESE}
    assert step.filter(doc) == "lang"
    assert doc["lang"] == "ja"


def test_threshold_is_inclusive_on_both_sides():
    lang, score = LanguageFilter(LanguageConfig()).predict(ENGLISH)
    assert LanguageFilter(LanguageConfig(min_score=score)).filter({"text": ENGLISH}) is None
    above = min(1.0, score + 1e-6)
    assert LanguageFilter(LanguageConfig(min_score=above)).filter({"text": ENGLISH}) == "lang"


def test_multi_line_empty_and_odd_text(step):
    assert step.predict("first line\nsecond line of the English text\n")[0] == "en"
    for text in ("", "   \n\t", "12345 67890", "😀😀😀"):
        doc = {"text": text}
        step.filter(doc)  # never raises; an unknown language is just rejected
        assert isinstance(doc["lang"], str) and 0.0 <= doc["lang_score"] <= 1.0
    assert step.filter({"text": None}) == "lang"


def test_pickles_without_the_model(step):
    step.predict(ENGLISH)  # loads the model
    copy = pickle.loads(pickle.dumps(step))
    assert copy._model is None
    assert copy.predict(FRENCH)[0] == "fr"


def test_a_model_an_executor_cannot_find_fails_the_task_with_where_it_looked(tmp_path):
    """Not one errors/ row per document of a stage that then "succeeds": the path the driver
    checked may not exist where the task runs (a relative path, another venv)."""
    from curation.filters.language import bundled_model
    from refinery.errors import ExecutorSetupError

    model = tmp_path / "lid.ftz"
    model.write_bytes(bundled_model().read_bytes())
    step = LanguageFilter(LanguageConfig(model=str(model)))
    assert step.model_path == str(model)
    model.unlink()  # as on an executor without it
    with pytest.raises(ExecutorSetupError, match=r"lid.ftz cannot be loaded \(on host .*--files"):
        step.filter({"text": ENGLISH})
    # the bundled model is found where the filter runs, not at the driver's venv path
    assert LanguageFilter(LanguageConfig()).model_path is None
    # a name an executor lacks in its working folder (an archive unpacked under another name)
    # is named as given, and where it was then looked for
    relative = LanguageFilter(LanguageConfig())
    relative.model_path = "m/wrong.bin"  # as shipped: the driver's check found it there
    with pytest.raises(
        ExecutorSetupError, match=r"model m/wrong.bin \(not in the working folder, so read as /"
    ):
        relative.filter({"text": ENGLISH})


def test_config_errors():
    with pytest.raises(ConfigError, match="min_score must be in"):
        LanguageConfig(min_score=1.5)
    with pytest.raises(ConfigError, match="no model file at .*missing.ftz"):
        LanguageFilter(LanguageConfig(model="missing.ftz"))


def test_keeping_a_language_written_without_spaces_under_word_counts_is_said():
    config = FilterConfig(language=LanguageConfig(languages=["en", "ja", "zh"]))
    warning = unspaced_language_warning(config)
    assert "keeps ja, zh" in warning and "gopher_quality, c4, fineweb count words" in warning
    assert unspaced_language_warning(FilterConfig()) is None  # the default languages
    # FineWeb's newline rule counts whitespace words too: a line is about one (it was not said)
    fineweb = FilterConfig(steps=["language", "fineweb"], language=LanguageConfig(languages=["zh"]))
    assert unspaced_language_warning(fineweb).endswith(
        "but fineweb counts words split on whitespace: nearly every such document fails "
        "(fineweb:newline_word_ratio); drop that step, or raise "
        "filter.fineweb.max_newline_word_ratio"
    )
    repetition = FilterConfig(
        steps=["language", "gopher_repetition"], language=LanguageConfig(languages=["zh"])
    )
    assert unspaced_language_warning(repetition) is None


def test_languages_not_among_the_model_labels_are_refused_before_any_work():
    assert check_languages(LanguageConfig(languages=["en", "zh"])).name == "lid.176.ftz"
    with pytest.raises(ConfigError, match=r"'EN' \(did you mean 'en'\?\), 'xx' not among"):
        check_languages(LanguageConfig(languages=["EN", "de", "xx"]))
    # other codes of a language, not a spelling neighbour (`deu` was Basque, `por` Odia)
    for code, label in [("deu", "de"), ("por", "pt"), ("pt-BR", "pt"), ("zh_Hant", "zh"),
                        ("nb", "no"), ("jpn", "ja")]:  # fmt: skip
        with pytest.raises(ConfigError, match=rf"'{code}' \(did you mean '{label}'\?\)"):
            check_languages(LanguageConfig(languages=[code]))
    with pytest.raises(ConfigError, match=r"'qqq' not among"):  # no guess rather than a wrong one
        check_languages(LanguageConfig(languages=["qqq"]))


def test_an_unquoted_no_for_norwegian_is_refused_by_name():
    # YAML 1.1 reads `no` as false: it was taken for the language 'false'
    with pytest.raises(ConfigError, match=r"languages\[1\]: false is a YAML boolean.*'no'"):
        from_dict(FilterConfig, {"language": {"languages": ["en", False]}})


def test_the_score_is_lid176s_on_the_text_as_datatrove_passes_it(step):
    german = "Die Stadt liegt am Ufer des Flusses und hat eine lange Geschichte. " * 3
    nbsp = german.replace(" ", "\u00a0")  # fastText keeps it inside words; str.split did not
    score = step.predict(nbsp)[1]  # loads the model
    assert score == pytest.approx(min(step._model.predict(nbsp, k=1)[1][0], 1.0))
    # leading white space is no text: 2,100 newlines first left nothing in the window
    assert step.predict("\n" * 2100 + german)[0] == "de"


def test_a_language_model_file_that_is_not_fasttext_is_refused_by_name(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    with pytest.raises(ConfigError, match=rf"{notes} is not a fastText model"):
        check_languages(LanguageConfig(model=str(notes)))
