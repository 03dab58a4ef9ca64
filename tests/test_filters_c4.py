import pytest

from curation.filters.c4 import (
    C4Config,
    C4Filter,
    count_sentence_ends,
    count_sentences,
    sentence_end_pattern,
)
from curation.filters.text_stats import TERMINAL_PUNCTUATION
from refinery.config import ConfigError

GOOD = [
    "The river rises in the northern hills.",
    "It flows south for about forty miles!",
    "Did the old mill ever reopen?",
    'The mayor said "we will rebuild it."',
    "Fishing is allowed from the east bank.",
]


def run(text: str, lang: str | None = "en", **config) -> tuple[str | None, dict]:
    """(reason, document after the filter) for C4 on `text`."""
    doc = {"text": text, "lang": lang}
    step = C4Filter(C4Config(**config))
    reason = step.filter(doc)
    doc["counters"] = dict(step.drain_counters())
    return reason, doc


def test_good_page_is_kept_unchanged():
    reason, doc = run("\n".join(GOOD))
    assert reason is None
    assert doc["text"] == "\n".join(GOOD)


def test_min_sentences_boundary():
    assert run("\n".join(GOOD))[0] is None
    assert run("\n".join(GOOD[:4]))[0] == "c4:min_sentences"
    assert run("\n".join(GOOD[:2]), min_sentences=2)[0] is None


def test_rejected_page_is_left_as_it_was():
    text = "\n".join(["Menu", *GOOD[:4]])
    reason, doc = run(text)
    assert reason == "c4:min_sentences"
    assert doc["text"] == text


def test_sentences_are_counted_within_lines():
    line = "One two three. Four five six! Seven eight nine? Ten eleven twelve. End of it."
    assert run(line)[0] is None
    assert run(line.replace(" End of it.", ""))[0] == "c4:min_sentences"


def count(text: str, marks=tuple(TERMINAL_PUNCTUATION)) -> int:
    return count_sentence_ends(sentence_end_pattern(tuple(marks)), text)


def test_sentence_ends():
    assert count("Pi is 3.14 and example.com is a site.") == 1
    assert count('He said "no." Then he left!') == 2
    assert count("Wait... What?! Fine.") == 3
    assert count("Wait… What?! Fine.") == 3
    assert count("So... we waited... and waited… and nothing... happened... at all") == 0
    assert count("It trailed off...") == 1 and count("It trailed off… and then") == 0
    assert count("这是第一句。这是第二句！这是第三句？") == 3
    assert count("यह पहला वाक्य है। यह दूसरा है।") == 2
    assert count("No ending here") == 0
    assert count("") == 0


def test_words_after_the_last_sentence_end_are_a_sentence():
    pattern = sentence_end_pattern(tuple(TERMINAL_PUNCTUATION))
    assert (
        count_sentences(pattern, "Ahhh. Work. I vaguely remember that! What is it like? Lol") == 5
    )
    assert count_sentences(pattern, "So... we waited... and waited") == 1
    assert count_sentences(pattern, "It trailed off...") == 1


def test_marks_without_a_word_since_the_last_end_end_no_sentence():
    pattern = sentence_end_pattern(tuple(TERMINAL_PUNCTUATION))
    assert count_sentences(pattern, "Click here now . . . . .") == 1
    assert count_sentences(pattern, "Buy cheap pills !!! ??? !!! ??? !!!") == 1
    assert count_sentences(pattern, "So . . . we waited. Then . . . it rained") == 4
    assert count_sentences(pattern, "? Who knows. . .") == 1
    spaced = "I went to the store with my dad and then . . . well, you know what happened . . . "
    assert run(spaced + "It was a long day for all of us and we go back tomorrow . . .")[0] == (
        "c4:min_sentences"
    )
    assert count_sentences(pattern, 'He said "no."') == 1
    assert count_sentences(pattern, "") == 0
    # four sentences and one without its mark: five, as Punkt and spaCy count them
    assert run("The cat sat on the mat. " * 4 + "The cat sat on the mat")[0] is None


def test_lines_without_terminal_punctuation_are_dropped():
    page = ["Home | About | Contact", *GOOD, "Read more...", "Continued …", "Share this page"]
    reason, doc = run("\n".join(page), filter_no_terminal_punct=True)
    assert reason is None
    assert doc["text"] == "\n".join(GOOD)
    assert doc["counters"] == {"c4_lines_dropped:no_terminal_punct": 4}


def test_end_quotation_marks_end_a_line():
    strict = {"filter_no_terminal_punct": True}
    for quote in ("“the best view”", "'the best view'"):  # as DataTrove's C4 and FineWeb
        reason, doc = run("\n".join([*GOOD, f"She called it {quote}"]), **strict)
        assert reason is None and doc["text"].endswith(quote)
    reason, doc = run("\n".join([*GOOD, "She called it the best view"]), **strict)
    assert doc["text"] == "\n".join(GOOD)  # no final mark: dropped


def test_a_kept_line_without_a_final_mark_is_one_sentence():
    """With the terminal-punctuation rule off (the default), headings and list lines stay;
    each is at least one sentence, as DataTrove's splitter counts it (they counted none, and
    a news article of short paragraphs fell under min_sentences)."""
    lines = [f"Heading number {i} about the new bridge" for i in range(5)]
    assert run("\n".join(lines))[0] is None
    assert run("\n".join(lines[:4]))[0] == "c4:min_sentences"
    assert run("\n".join(["One. Two. Three. Four and five.", lines[0]]))[0] is None


def test_min_words_per_line_boundary():
    reason, doc = run("\n".join([*GOOD, "Three words here.", "Two words."]))
    assert reason is None
    assert doc["text"].splitlines()[-1] == "Three words here."
    assert doc["counters"] == {"c4_lines_dropped:min_words": 1}


def test_word_length_boundary():
    long_ok = "A " + "x" * 1000 + " word."
    too_long = "A " + "y" * 1001 + " word."
    reason, doc = run("\n".join([*GOOD, long_ok, too_long]))
    assert reason is None
    assert long_ok in doc["text"] and too_long not in doc["text"]
    assert doc["counters"] == {"c4_lines_dropped:long_word": 1}


def test_javascript_and_policy_lines_are_dropped():
    noise = [
        "Please enable JavaScript to view the comments.",
        "By continuing you agree to our Privacy Policy.",
        "This site uses cookies to improve your experience.",
    ]
    reason, doc = run("\n".join(noise[:1] + GOOD + noise[1:]))
    assert reason is None
    assert doc["text"] == "\n".join(GOOD)
    assert doc["counters"] == {"c4_lines_dropped:javascript": 1, "c4_lines_dropped:policy": 2}
    reason, doc = run("\n".join(noise + GOOD), drop_javascript_lines=False, policy_phrases=[])
    assert doc["text"] == "\n".join(noise + GOOD)


def test_lorem_ipsum_rejects_the_page_wherever_it_is():
    assert run("\n".join([*GOOD, "Lorem Ipsum dolor sit amet"]))[0] == "c4:lorem_ipsum"
    assert run("\n".join([*GOOD, "Lorem Ipsum"]), reject_lorem_ipsum=False)[0] is None


def test_curly_bracket_rejects_the_page():
    assert run("\n".join([*GOOD, "function f() { return 1; }"]))[0] == "c4:curly_bracket"
    assert run("\n".join([*GOOD, "x = {1, 2}"]), reject_curly_bracket=False)[0] is None
    assert run("\n".join([*GOOD, "Sets use (parentheses)."]))[0] is None


def test_citation_markers_are_removed_before_the_line_is_judged():
    reason, doc = run("\n".join([*GOOD, "It was founded in 1900.[1]", "Its size is unknown.[12]"]))
    assert reason is None
    assert doc["text"].splitlines()[-2:] == ["It was founded in 1900.", "Its size is unknown."]
    text = "The bridge is older than the town.[citation needed]"
    assert run("\n".join([*GOOD, text]))[1]["text"].endswith("older than the town.")
    kept = run("\n".join([*GOOD, text]), remove_citations=False, filter_no_terminal_punct=True)
    assert kept[1]["text"] == "\n".join(GOOD)


def test_a_citation_marker_inside_a_phrase_does_not_hide_it():
    noise = ["This site uses[3] cookies to remember you.", "Please enable Java[2]script now."]
    reason, doc = run("\n".join([*GOOD, *noise]))
    assert reason is None and doc["text"] == "\n".join(GOOD)
    assert doc["counters"] == {"c4_lines_dropped:javascript": 1, "c4_lines_dropped:policy": 1}


def test_german_closing_quotes_end_a_sentence_and_a_line():
    line = "Er sagte: „Nein.“ Dann ging er nach Hause, wie jeden Abend"
    english = "He said: “No.” Then he went home, as every evening"
    assert run("\n".join([line] * 2), lang="de", min_sentences=4)[0] is None
    assert run("\n".join([english] * 2), min_sentences=4)[0] is None
    ended = "Sie nannte es »den schönsten Blick«"
    reason, doc = run("\n".join([*GOOD, ended]), filter_no_terminal_punct=True)
    assert doc["text"].endswith(ended)


def test_empty_text_has_no_sentences():
    assert run("")[0] == "c4:min_sentences"
    assert run(" \n \n")[0] == "c4:min_sentences"


def test_lines_are_stripped_and_blank_lines_dropped():
    reason, doc = run("\n\n".join("   " + line + "\t\r" for line in GOOD))
    assert reason is None
    assert doc["text"] == "\n".join(GOOD)


def test_very_long_line_is_one_line():
    line = " ".join(["word"] * 20_000) + ". " + " ".join(GOOD)
    reason, doc = run(line)
    assert reason is None
    assert doc["text"] == line


def test_other_scripts_use_their_own_marks():
    hindi = ["यह पहला वाक्य है।", "यह दूसरा वाक्य है।", "यह तीसरा वाक्य है।"]
    assert run("\n".join(hindi), lang="hi", min_sentences=3)[0] is None
    chinese = "这是第一句。这是第二句！这是第三句？"
    # Chinese has no spaces: a line is one whitespace word, so C4's word rule drops it.
    assert run(chinese, lang="zh", min_sentences=3)[0] == "c4:min_sentences"
    assert run(chinese, lang="zh", min_sentences=3, min_words_per_line=0)[0] is None


def test_terminal_punctuation_per_language():
    marks = {"terminal_punctuation_by_language": {"xx": ["!"]}, "filter_no_terminal_punct": True}
    assert run("\n".join(GOOD), lang="xx", **marks)[0] == "c4:min_sentences"
    shouted = "\n".join(line.rstrip('.?!"') + "!" for line in GOOD)
    assert run(shouted, lang="xx", **marks)[0] is None
    assert run("\n".join(GOOD), lang="en", **marks)[0] is None


def test_c4_config_validation():
    with pytest.raises(ConfigError, match="min_sentences"):
        C4Config(min_sentences=0)
    with pytest.raises(ConfigError, match="max_word_chars"):
        C4Config(max_word_chars=0)
    with pytest.raises(ConfigError, match="terminal_punctuation_by_language.fr"):
        C4Config(terminal_punctuation_by_language={"fr": []})
    with pytest.raises(ConfigError, match="no sentence mark"):
        C4Config(terminal_punctuation=['"', "…"])
    with pytest.raises(ConfigError, match="policy_phrases"):
        C4Config(policy_phrases=[""])


def test_without_the_terminal_punctuation_rule_headings_stay_for_fineweb_to_judge():
    """FineWeb's recipe (DataTrove's filter_no_terminal_punct=False): C4 keeps headings and
    list items; FineWeb's page-level punctuation ratio then sees them."""
    from curation.filters.fineweb import FineWebFilter

    text = "\n".join(["The River Town Today", *GOOD, "Fishing rules for the east bank"])
    reason, doc = run(text)
    assert reason is None and doc["text"] == text
    published = run(text, filter_no_terminal_punct=True)  # C4 as published drops both
    assert published[1]["text"] == "\n".join(GOOD)
    menu = "\n".join([*(f"Menu entry number {i} here" for i in range(40)), *GOOD])
    reason, doc = run(menu)
    assert reason is None
    assert FineWebFilter().filter(doc) == "fineweb:line_punct_ratio"


def test_a_line_is_searched_for_words_once_between_sentence_ends(monkeypatch):
    """Each run of marks searched back to the last end: 30 KB of " ." took 3.7 s."""
    import curation.filters.c4 as c4

    scanned = []

    class Counting:
        def search(self, line, start, end=None):
            end = len(line) if end is None else end
            scanned.append(end - start)
            return c4_word.search(line, start, end)

    c4_word = c4._WORD
    monkeypatch.setattr(c4, "_WORD", Counting())
    line = "Intro words here" + " ." * 15000 + " and a word. Done"
    pattern = sentence_end_pattern(tuple(TERMINAL_PUNCTUATION))
    assert count_sentences(pattern, line) == 3
    assert sum(scanned) <= len(line)


def test_a_run_of_marks_is_one_sentence_end_or_none():
    """Matches start only where a run of marks starts (a run used to be tried from each of
    its positions, quadratic in its length: 1,000 marks cost 30 ms, a page of them seconds)."""
    pattern = sentence_end_pattern(tuple(TERMINAL_PUNCTUATION))
    text = "Done!!! Next" + " word " + "!" * 5000 + "x" + " 好。。。好"
    assert [m.group() for m in pattern.finditer(text)] == ["!!!", "。。。"]


def test_lines_dropped_from_a_page_then_rejected_are_counted():
    """The drops are why the page falls under min_sentences: they count as on a kept page."""
    page = ["Read our privacy policy today.", "We use cookies here.", "This site uses cookies."]
    reason, doc = run("\n".join([*page, "One sentence is left here."]))
    assert reason == "c4:min_sentences"
    assert doc["counters"] == {"c4_lines_dropped:policy": 3}
