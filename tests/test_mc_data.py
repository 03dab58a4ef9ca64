"""Benchmark readers: each layout of ../shared/data/mc_eval/ on inline samples, then real files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from refinery.mc_data import BenchmarkError, MCItem, read_benchmark, read_benchmarks

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "mc_eval"

REDUX_HEADER = "question,choices,answer,error_type,source,correct_answer,potential_reason"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def test_mmlu_redux_csv_drops_flawed_rows_unless_asked(tmp_path):
    csv_file = write(
        tmp_path / "mmlu_astronomy.csv",
        f"{REDUX_HEADER}\n"
        "\"What is 2, plus 2?\",\"['3', '4', '5', '6']\",1,OK ,,,\n"
        '"Multi-line\nquestion?","[\'a\', \'b\']",0,wrong_groundtruth,,1,"reason"\n'
        'Plain?,"[\'x\', ""y\'s""]",1,Ok,,,\n',  # a doubled quote inside a quoted field
    )
    left_out = Counter()
    items = read_benchmark(csv_file, left_out=left_out)
    assert left_out == {"wrong groundtruth": 1}
    assert items == [
        MCItem("mmlu_astronomy", "mmlu_astronomy:2", "What is 2, plus 2?", ["3", "4", "5", "6"], 1,
               "astronomy"),
        MCItem("mmlu_astronomy", "mmlu_astronomy:5", "Plain?", ["x", "y's"], 1, "astronomy"),
    ]  # fmt: skip
    flawed = read_benchmark(csv_file, include_flawed=True)
    assert [item.id for item in flawed] == [
        "mmlu_astronomy:2",
        "mmlu_astronomy:3",
        "mmlu_astronomy:5",
    ]
    assert flawed[1].question == "Multi-line\nquestion?"


def test_semicolon_csv_with_reordered_columns_and_a_macroman_byte(tmp_path, capsys):
    raw = (
        "question;choices;answer;correct_answer;error_type;source;potential_reason\n"
        "My sister\xd5s head?;\"['Wrong, Wrong', 'Not wrong']\";1;;ok;;\n"
    ).encode("latin-1")
    (item,) = read_benchmark(write(tmp_path / "mmlu_moral.csv", raw))
    assert item.question == "My sister\u2019s head?"  # 0xD5 is MacRoman's right quote
    assert "mmlu_moral.csv: 1 bytes are not UTF-8, read as MacRoman" in capsys.readouterr().err
    assert item.choices == ["Wrong, Wrong", "Not wrong"]
    assert item.answer == 1


def test_original_mmlu_csv_without_a_header(tmp_path):
    csv_file = write(
        tmp_path / "anatomy_test.csv",
        '"Which bone; the longest?",femur,tibia,"ulna, arm",skull,A\nSecond?,a,b,c,d,d\n',
    )
    items = read_benchmark(csv_file)
    assert [(i.question, i.answer, i.subject) for i in items] == [
        ("Which bone; the longest?", 0, "anatomy"),
        ("Second?", 3, "anatomy"),
    ]
    assert items[0].choices == ["femur", "tibia", "ulna, arm", "skull"]


def test_a_headerless_csv_is_split_by_the_delimiter_that_splits_every_row_alike(tmp_path):
    """The first question's semicolons outnumber its commas; the rows still split on commas."""
    text = "Which is sorted: 1; 2; 3; 4; 5; 6; 7?,yes,no,maybe,never,A\nQ2,a,b,c,d,B\n"
    items = read_benchmark(write(tmp_path / "sorting_test.csv", text))
    assert [(i.question, i.choices, i.answer) for i in items] == [
        ("Which is sorted: 1; 2; 3; 4; 5; 6; 7?", ["yes", "no", "maybe", "never"], 0),
        ("Q2", ["a", "b", "c", "d"], 1),
    ]
    lost = write(tmp_path / "lost_test.csv", "Q1,a,b,c,d,A\nQ2,a,b,c,d\n")
    with pytest.raises(BenchmarkError, match="line 2: 5 columns where line 1 has 6"):
        read_benchmark(lost)
    with pytest.raises(BenchmarkError, match="line 1: choice 2 is empty"):
        read_benchmark(write(tmp_path / "gap_test.csv", "Q1,a,,c,d,A\n"))


def test_a_letter_header_without_an_answer_column_is_a_header_when_answers_are_hidden(tmp_path):
    """`question,A,B,C,D` (a test split with hidden labels) is read as a header, not an item."""
    text = "question,A,B,C,D\nWhich bone?,femur,tibia,ulna,skull\n"
    items = read_benchmark(write(tmp_path / "anatomy_test.csv", text), answers=False)
    assert [(i.question, i.choices, i.answer) for i in items] == [
        ("Which bone?", ["femur", "tibia", "ulna", "skull"], None)
    ]


def test_a_headerless_csv_whose_last_cell_is_no_answer_is_refused_even_unscored(tmp_path):
    """Without the answer column the last choice would be taken for the answer and dropped."""
    no_answers = write(tmp_path / "anatomy_test.csv", "Which bone?,femur,tibia,ulna,skull\n")
    with pytest.raises(BenchmarkError, match="column 5: answer 'skull' is neither"):
        read_benchmark(no_answers, answers=False)
    hidden = write(tmp_path / "hidden_test.csv", "Which bone?,femur,tibia,ulna,skull,\n")
    assert read_benchmark(hidden, answers=False)[0].choices == ["femur", "tibia", "ulna", "skull"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("Q?,\"['a', 'b'\",0,ok,,,", r"line 2, column 2 \('choices'\): choices are not a list"),
        ("Q?,\"['a', 'b']\",2,ok,,,", r"line 2, column 3 \('answer'\): answer '2' but only 2"),
        ("Q?,\"['a', 'b']\",maybe,ok,,,", r"line 2, column 3 .*neither an index nor a letter"),
        ("Q?,\"['a', '']\",1,ok,,,", r"line 2: choice 2 is empty"),
        (",\"['a', 'b']\",1,ok,,,", r"line 2: the question is empty"),
    ],
)
def test_bad_csv_rows_name_the_line_and_column(tmp_path, row, message):
    csv_file = write(tmp_path / "mmlu_x.csv", f"{REDUX_HEADER}\n{row}\n")
    with pytest.raises(BenchmarkError, match=message):
        read_benchmark(csv_file)


def test_piqa_labels_come_from_the_line_aligned_labels_file(tmp_path):
    rows = [{"goal": "Open a jar", "sol1": "twist the lid ", "sol2": "eat the lid"}] * 2
    folder = tmp_path / "piqa"
    jsonl = write(folder / "valid.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write(folder / "valid-labels.lst", "0\n1\n")
    items = read_benchmark(jsonl)
    assert [(i.id, i.question, i.choices, i.answer) for i in items] == [
        ("piqa/valid:1", "Open a jar", ["twist the lid ", "eat the lid"], 0),  # as given
        ("piqa/valid:2", "Open a jar", ["twist the lid ", "eat the lid"], 1),
    ]
    write(folder / "valid-labels.lst", "0\n1\n\n")  # blank lines at the end are no labels
    assert [i.answer for i in read_benchmark(jsonl)] == [0, 1]
    write(folder / "valid-labels.lst", "0\n\n1\n")  # a gap would shift the labels after it
    with pytest.raises(BenchmarkError, match="valid-labels.lst: line 2 is blank"):
        read_benchmark(jsonl)
    write(folder / "valid-labels.lst", "0\n")
    with pytest.raises(BenchmarkError, match="1 labels for the 2 questions"):
        read_benchmark(jsonl)
    write(folder / "valid-labels.lst", "0\n2\n")
    with pytest.raises(BenchmarkError, match=r"valid-labels.lst: line 2: answer '2' but only 2"):
        read_benchmark(jsonl)


def test_piqa_with_an_inline_label_and_without_any(tmp_path):
    row = {"goal": "g", "sol1": "a", "sol2": "b", "label": 1}
    assert read_benchmark(write(tmp_path / "piqa.jsonl", json.dumps(row)))[0].answer == 1
    del row["label"]
    with pytest.raises(BenchmarkError, match="line 1: no 'label' field and no piqa-labels.lst"):
        read_benchmark(write(tmp_path / "piqa.jsonl", json.dumps(row)))


def test_a_byte_order_mark_is_no_part_of_a_jsonl_or_csv_benchmark(tmp_path):
    row = json.dumps({"goal": "g", "sol1": "a", "sol2": "b", "label": 1})
    assert read_benchmark(write(tmp_path / "piqa.jsonl", "\ufeff" + row))[0].question == "g"
    text = f"\ufeff{REDUX_HEADER}\nq?,\"['x', 'y']\",1,ok,,,\n"
    assert read_benchmark(write(tmp_path / "mmlu_x.csv", text))[0].question == "q?"


def test_a_csv_field_past_the_csv_module_limit_names_its_line(tmp_path):
    # a stray quote that swallows the rest of a large file ends the same way
    text = (
        f"{REDUX_HEADER}\nq?,\"['x', 'y']\",1,ok,,,\n\"{'x ' * 70_000}\",\"['a', 'b']\",0,ok,,,\n"
    )
    with pytest.raises(BenchmarkError, match=r"mmlu_x.csv: line 3: not readable as CSV: field"):
        read_benchmark(write(tmp_path / "mmlu_x.csv", text))
    # a stray quote mid-row, in the records the delimiter is guessed from: those before it
    # still say it is a comma
    rows = [f"What is {i} plus one?,a{i},b{i},c{i},d{i},A" for i in range(3000)]
    rows[5] = 'Five plus one?,"a,b,c,d,A'
    with pytest.raises(BenchmarkError, match=r"x_test.csv: line 6: not readable as CSV: field"):
        read_benchmark(write(tmp_path / "x_test.csv", "\n".join(rows) + "\n"))


def test_agieval_options_lose_their_letter_prefix(tmp_path):
    rows = [
        {
            "passage": None,
            "question": "Pick.",
            "options": ["(A)5", "(B) 6", "(C)(x)"],
            "label": "C",
        },
        {"passage": "A text.", "question": "Q?", "options": ["(A)no", "(B)(A)yes"], "label": "b"},
        {"passage": "", "question": "Q2?", "options": ["(B)first", "second"], "label": "A"},
    ]
    jsonl = write(tmp_path / "lsat-ar.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = read_benchmark(jsonl)
    assert [(i.question, i.choices, i.answer) for i in items] == [
        ("Pick.", ["5", "6", "(x)"], 2),
        ("A text.\n\nQ?", ["no", "(A)yes"], 1),
        ("Q2?", ["(B)first", "second"], 0),  # a prefix out of place is part of the text
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "q", "options": ["(A)a", "(B)b"], "label": "C"}', "line 1: answer 'C'"),
        ('{"question": "q", "options": ["(A)a", "(B)b"], "label": ["A", "B"]}', "neither an index"),
        ('{"question": "q", "options": ["(A)a"], "label": "A"}', "at least two choices"),
        ('{"question": "q", "options": ["a", "b"]}', "line 1: no 'label'"),
        ('{"passage": 3, "question": "q", "options": ["a", "b"], "label": "A"}', "must be text"),
        ('{"question": 12, "options": ["a", "b"], "label": "A"}', "must be text"),
        ('{"question": "q", "options": ["a", "b"], "label": 0}\n{"q": ', "line 2, column 7"),
        ('{"text": "q"}', "unknown layout with fields"),
        ("\n\n", "empty benchmark file"),
        ('{"question": "q", "options": ["(A)", "b"], "label": "B"}', "line 1: choice 1 is empty"),
        ('{"question": " ", "options": ["a", "b"], "label": "B"}', "the question is empty"),
        ('{"goal": "g", "sol1": "", "sol2": "b", "label": 1}', "line 1: choice 1 is empty"),
        ('{"goal": "g", "sol1": "a", "sol2": " ", "label": 1}', "line 1: choice 2 is empty"),
        ('{"goal": "\\n", "sol1": "a", "sol2": "b", "label": 1}', "the question is empty"),
    ],
)  # fmt: skip
def test_bad_jsonl_names_the_line(tmp_path, text, message):
    with pytest.raises(BenchmarkError, match=message):
        read_benchmark(write(tmp_path / "bench.jsonl", text))


def test_a_file_without_items_to_score_is_refused(tmp_path):
    # a benchmark asked for must not vanish from eval or contamination results
    with pytest.raises(BenchmarkError, match=r"header.csv: no items to score \(no rows\)"):
        read_benchmark(write(tmp_path / "header.csv", f"{REDUX_HEADER}\n"))
    flawed = write(
        tmp_path / "flawed.csv", f"{REDUX_HEADER}\nQ?,\"['a', 'b']\",0,wrong_groundtruth,,,\n"
    )
    with pytest.raises(BenchmarkError, match="its 1 rows are not annotated `ok`; --include-fl"):
        read_benchmark(flawed)
    assert len(read_benchmark(flawed, include_flawed=True)) == 1


def test_a_folder_is_read_recursively_by_file_stem(tmp_path):
    write(tmp_path / "a" / "mmlu_x.csv", f"{REDUX_HEADER}\nQ?,\"['a', 'b']\",0,ok,,,\n")
    write(tmp_path / "b" / "agi.jsonl", '{"question": "q", "options": ["a", "b"], "label": "B"}\n')
    write(tmp_path / "b" / "notes.txt", "not a benchmark")
    write(tmp_path / "b" / "piqa" / "valid.jsonl", '{"goal": "g", "sol1": "a", "sol2": "b"}\n')
    write(tmp_path / "b" / "piqa" / "valid-labels.lst", "1\n")
    benchmarks = read_benchmarks(tmp_path)
    assert sorted(benchmarks) == ["agi", "mmlu_x", "piqa/valid"]  # a split's name says whose
    assert benchmarks["piqa/valid"][0].id == "piqa/valid:1"
    assert benchmarks["agi"][0].answer == 1
    write(tmp_path / "c" / "agi.jsonl", '{"question": "q", "options": ["a", "b"], "label": "A"}\n')
    with pytest.raises(BenchmarkError, match="share the name 'agi'"):
        read_benchmarks(tmp_path)
    same = [tmp_path / "b" / "agi.jsonl", tmp_path / "a" / ".." / "b" / "agi.jsonl"]
    assert list(read_benchmarks(same)) == ["agi"]  # one file, by two paths: read once
    with pytest.raises(BenchmarkError, match="no such file"):
        read_benchmarks(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="no .csv or .jsonl"):
        read_benchmarks(tmp_path / "empty")


def test_compressed_benchmark_files_in_a_folder_are_said(tmp_path, capsys):
    """A folder's x.jsonl.gz was passed over without a word: its items went unchecked."""
    write(tmp_path / "agi.jsonl", '{"question": "q", "options": ["a", "b"], "label": "B"}\n')
    write(tmp_path / "packed" / "sat.jsonl.gz", b"\x1f\x8b")
    write(tmp_path / "notes.txt.gz", b"\x1f\x8b")  # no benchmark's name: not said
    assert list(read_benchmarks(tmp_path)) == ["agi"]
    err = capsys.readouterr().err
    assert "1 compressed benchmark file(s) not read (sat.jsonl.gz): decompress them" in err


def test_the_demo_set_shipped_in_conf():
    (items,) = read_benchmarks(REPO / "conf" / "eval" / "demo_mc.jsonl").values()
    assert len(items) == 20
    assert all(len(item.choices) == 4 and not item.choices[0].startswith("(") for item in items)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/mc_eval is absent")
def test_every_shared_benchmark_file_reads():
    left_out = {}
    ok = read_benchmarks(SHARED, left_out=left_out)
    everything = read_benchmarks(SHARED, include_flawed=True)
    assert sum(sum(c.values()) for c in left_out.values()) == 278
    assert len(ok) == 48  # 41 MMLU-Redux subjects, PIQA, 6 AGIEval subsets
    assert len(ok["piqa/valid"]) == 1294 and len(ok["lsat-lr"]) == 351
    assert sum(map(len, everything.values())) - sum(map(len, ok.values())) == 278
    assert all(len(v) == 100 for k, v in everything.items() if k.startswith("mmlu_"))
    for items in ok.values():
        for item in items:
            assert item.question and all(item.choices) and 0 <= item.answer < len(item.choices)
            if not item.benchmark.startswith("mmlu_"):  # MMLU options may cite "(A)" in text
                assert not any(choice.startswith("(A)") for choice in item.choices)
