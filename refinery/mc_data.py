"""Multiple-choice benchmark files -> `MCItem`s, in the layouts of `../shared/data/mc_eval/`.

Imports only the standard library: `refinery eval` scores the items with torch, and the
contamination job reads the same items inside Spark executors.

Layouts (chosen by suffix, then by the fields present):

* MMLU-style CSV: with a header (MMLU-Redux: `question, choices, answer, error_type, ...` in any
  column order, `choices` a Python list literal, `answer` a 0-based index or a letter) or without
  one (original MMLU: `question, A, B, C, D, answer-letter`). The delimiter (`,`, `;` or tab) is
  the one that splits the first records evenly into the most fields; undecodable bytes are read as
  MacRoman (one file of MMLU-Redux has a MacRoman apostrophe). Rows whose `error_type`, normalised
  as the MMLU-Redux authors advise (strip, lower case, `_` -> space), is not `ok` are flawed
  questions and are left out unless `include_flawed`.
* PIQA-style JSONL: `{goal, sol1, sol2}` with the 0/1 labels line-aligned in `<stem>-labels.lst`
  beside it (or an inline `label`).
* AGIEval-style JSONL: `{passage, question, options: ["(A)...", ...], label: "A"}`; the `(A)`
  prefixes are removed so a choice is scored as its own text.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from refinery.errors import RefineryError
from refinery.jsonl import json_objects

SUFFIXES = (".csv", ".jsonl")
LETTERS = "ABCDEFGHIJ"
DELIMITERS = (",", ";", "\t")
OPTION_PREFIX = re.compile(r"^\s*\(([A-J])\)\s*")


# File stems that name a split, not a benchmark (PIQA ships `valid.jsonl`)
SPLIT_STEMS = frozenset({"train", "dev", "valid", "validation", "test"})


def benchmark_name(path: Path) -> str:
    """The results key of a benchmark file: its stem, or `<folder>/<stem>` when the stem only
    names a split (`piqa/valid`, not `valid`)."""
    return f"{path.parent.name}/{path.stem}" if path.stem in SPLIT_STEMS else path.stem


class BenchmarkError(RefineryError, ValueError):
    """A benchmark file that cannot be read as multiple-choice items."""


@dataclass(frozen=True)
class MCItem:
    benchmark: str  # benchmark_name of its file: the key of the results
    id: str  # "<name>:<line>", stable across runs
    question: str  # everything the answer follows: passage (if any), blank line, question
    choices: list[str]
    answer: int | None  # index into choices; None only when read with answers=False
    subject: str | None = None  # MMLU subject, for the "questions about <subject>" header


def read_benchmarks(
    paths: str | Path | list[str | Path],
    include_flawed: bool = False,
    left_out: dict[str, Counter] | None = None,
    answers: bool = True,
) -> dict[str, list[MCItem]]:
    """Items of each benchmark file, or of every .csv/.jsonl under a folder, by file stem;
    `left_out` gets each benchmark's flawed rows left out, by error type. `answers=False`
    reads no answer (a test split whose labels are hidden; the contamination check needs
    only the text), and every item's answer is None."""
    files: list[Path] = []
    for path in map(Path, paths if isinstance(paths, list) else [paths]):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            packed = sorted(p.name for p in path.rglob("*") if p.suffixes[-2:-1] == [".jsonl"]
                            or p.suffixes[-2:-1] == [".csv"])  # fmt: skip
            if packed:  # x.jsonl.gz: a benchmark not read, so not checked
                print(
                    f"{path}: {len(packed)} compressed benchmark file(s) not read "
                    f"({', '.join(packed[:3])}): decompress them to read them",
                    file=sys.stderr,
                )
            if not found:
                raise BenchmarkError(f"{path}: no .csv or .jsonl benchmark files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise BenchmarkError(f"{path}: no such file or folder")
    benchmarks: dict[str, list[MCItem]] = {}
    seen: dict[str, Path] = {}
    unique: dict[Path, Path] = {}
    for file in files:  # a file given twice, by any path, is read once
        unique.setdefault(file.resolve(), file)
    for file in unique.values():
        name = benchmark_name(file)
        if name in seen:
            raise BenchmarkError(
                f"{file} and {seen[name]} share the name {name!r}: results are keyed "
                "by that name, so evaluate them separately"
            )
        seen[name] = file
        flawed: Counter = Counter()
        benchmarks[name] = read_benchmark(file, include_flawed, flawed, answers)
        if left_out is not None and flawed:
            left_out[name] = flawed
    return benchmarks


def read_benchmark(
    path: str | Path,
    include_flawed: bool = False,
    left_out: Counter | None = None,
    answers: bool = True,
) -> list[MCItem]:
    """The items of one file; `include_flawed` keeps MMLU-Redux rows not annotated `ok`, which
    are otherwise counted in `left_out` by their error type."""
    path = Path(path)
    flawed: Counter = Counter() if left_out is None else left_out
    if path.suffix == ".csv":
        items = read_mmlu_csv(path, include_flawed, flawed, answers)
    elif path.suffix == ".jsonl":
        items = read_jsonl(path, answers)
    else:
        raise BenchmarkError(f"{path}: unknown benchmark format (expected .csv or .jsonl)")
    if not items:  # a benchmark asked for must not vanish from the results
        n = sum(flawed.values())
        why = (
            f"its {n} rows are not annotated `ok`; --include-flawed keeps them" if n else "no rows"
        )
        raise BenchmarkError(f"{path}: no items to score ({why})")
    return items


def decode_lenient(path: Path) -> str:
    """The file as UTF-8 (a byte-order mark at its start dropped), with any byte that is not
    valid UTF-8 read as MacRoman instead of failing (MMLU's CSVs have such quotes), said on
    stderr: a file in another encoding (Windows-1252) reads garbled, and its items can no
    longer match their text."""
    raw, parts, odd = path.read_bytes(), [], 0
    while True:
        try:
            parts.append(raw.decode("utf-8"))
            break
        except UnicodeDecodeError as err:
            parts.append(raw[: err.start].decode("utf-8"))
            parts.append(raw[err.start : err.end].decode("mac_roman"))
            odd += err.end - err.start
            raw = raw[err.end :]
    if odd:
        print(
            f"{path}: {odd} bytes are not UTF-8, read as MacRoman; convert a file in another "
            "encoding to UTF-8 (iconv -f cp1252 -t utf-8)",
            file=sys.stderr,
        )
    return "".join(parts).removeprefix("\ufeff")


def sniff_delimiter(text: str, records: int = 20) -> str:
    """The delimiter that splits the first `records` CSV records into the same number of
    fields, the most such (ties: comma); when none does, the one that splits the first record
    most. A question holding `;` or tabs splits into more fields than its neighbours do."""

    def widths(delimiter: str) -> list[int]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = (row for row in reader if any(cell.strip() for cell in row))
        counts: list[int] = []
        try:
            for _, row in zip(range(records), rows, strict=False):
                counts.append(len(row))
        except csv.Error:  # the records before it decide; reading the file then says where
            pass
        return counts or [0]

    found = {delimiter: widths(delimiter) for delimiter in DELIMITERS}
    even = [d for d in DELIMITERS if found[d][0] > 1 and len(set(found[d])) == 1]
    return max(even or DELIMITERS, key=lambda d: found[d][0])


def normalise_error_type(value: str) -> str:
    """MMLU-Redux spells labels inconsistently ("OK ", "Wrong Groundtruth", "wrong_groundtruth")."""
    return value.strip().lower().replace("_", " ")


def subject_of(stem: str) -> str:
    """abstract_algebra for both mmlu_abstract_algebra (MMLU-Redux) and abstract_algebra_test."""
    subject = stem.removeprefix("mmlu_")
    for split in ("_test", "_dev", "_val"):
        subject = subject.removesuffix(split)
    return subject


def answer_of(value: object, n_choices: int, where: str, answers: bool) -> int | None:
    """`parse_answer`, or None when the answers are not read."""
    return parse_answer(value, n_choices, where) if answers else None


def parse_answer(value: object, n_choices: int, where: str) -> int:
    """A 0-based index, its digit string, or a letter A.. -> index, checked against n_choices."""
    text = str(value).strip() if value is not None else ""
    if isinstance(value, bool) or not text:
        raise BenchmarkError(f"{where}: answer {value!r} is neither an index nor a letter")
    if text.isdigit():
        index = int(text)
    elif len(text) == 1 and text.upper() in LETTERS:
        index = LETTERS.index(text.upper())
    else:
        raise BenchmarkError(f"{where}: answer {value!r} is neither an index nor a letter")
    if index >= n_choices:
        raise BenchmarkError(f"{where}: answer {value!r} but only {n_choices} choices")
    return index


def _records(path: Path, text: str, delimiter: str):
    """(first line number, fields) of each CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as err:  # a field over csv.field_size_limit(): a stray quote, mostly
        raise BenchmarkError(f"{path}: line {start}: not readable as CSV: {err}") from None


def _is_header(row: list[str]) -> bool:
    names = {cell.strip().lower() for cell in row}
    return "question" in names and ("answer" in names or "choices" in names or {"a", "b"} <= names)


def read_mmlu_csv(
    path: Path, include_flawed: bool = False, left_out: Counter | None = None, answers: bool = True
) -> list[MCItem]:
    text = decode_lenient(path)
    if not text.strip():
        raise BenchmarkError(f"{path}: empty benchmark file")
    records = _records(path, text, sniff_delimiter(text))
    first_line, first = next(records)
    header = [cell.strip().lower() for cell in first] if _is_header(first) else None
    if header is None:
        records = iter([(first_line, first), *records])
    name, subject = benchmark_name(path), subject_of(path.stem)
    items = []
    for line, row in records:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: line {line}"
        if header is None:
            if len(row) != len(first):  # a lost answer column would read a choice as the answer
                raise BenchmarkError(
                    f"{where}: {len(row)} columns where line {first_line} has {len(first)} "
                    "(question, choices, answer letter)"
                )
            question, choices, answer = _headerless_row(row, where, answers)
        else:
            fields = dict(zip(header, row, strict=False))
            error_type = normalise_error_type(fields.get("error_type") or "")
            if not include_flawed and error_type not in ("", "ok"):
                if left_out is not None:
                    left_out[error_type] += 1
                continue
            question, choices, answer = _header_row(fields, header, where, answers)
        check_texts(question, choices, where)
        items.append(MCItem(name, f"{name}:{line}", question, choices, answer, subject))
    return items


def check_texts(question: str, choices: list[str], where: str) -> None:
    """An item scores its choices' text after its question's: neither may be empty (or only
    white space)."""
    if not question.strip():
        raise BenchmarkError(f"{where}: the question is empty")
    empty = next((i for i, choice in enumerate(choices) if not choice.strip()), None)
    if empty is not None:
        raise BenchmarkError(f"{where}: choice {empty + 1} is empty")


def _headerless_row(row: list[str], where: str, answers: bool) -> tuple[str, list[str], int | None]:
    if len(row) < 4:
        raise BenchmarkError(
            f"{where}: {len(row)} columns; a CSV without a header needs question, at least two "
            "choices and the answer letter (MMLU)"
        )
    choices = [cell.strip() for cell in row[1:-1]]
    # checked even when answers are not read: a file without the answer column would
    # otherwise lose its last choice unseen; a hidden answer is an empty cell
    hidden = not answers and not row[-1].strip()
    answer = None if hidden else parse_answer(row[-1], len(choices), f"{where}, column {len(row)}")
    return row[0].strip(), choices, answer if answers else None


def _header_row(
    row: dict[str, str], header: list[str], where: str, answers: bool
) -> tuple[str, list[str], int | None]:
    def column(name: str) -> str:
        return f"{where}, column {header.index(name) + 1} ({name!r})"

    for name in ("question", "answer") if answers else ("question",):
        if name not in header:
            raise BenchmarkError(f"{where}: the header has no {name!r} column")
    if "choices" in header:
        choices = _choice_list(row.get("choices") or "", column("choices"))
    else:
        letters = [letter.lower() for letter in LETTERS if letter.lower() in header]
        if len(letters) < 2:
            raise BenchmarkError(f"{where}: the header has neither 'choices' nor columns A, B, ...")
        choices = [(row.get(letter) or "").strip() for letter in letters]
    answer = parse_answer(row.get("answer"), len(choices), column("answer")) if answers else None
    return (row.get("question") or "").strip(), choices, answer


def _choice_list(value: str, where: str) -> list[str]:
    """MMLU-Redux writes choices as a Python list literal: "['True, True', 'False, False']"."""
    try:
        choices = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError) as err:
        raise BenchmarkError(f"{where}: choices are not a list literal: {err}") from None
    if not isinstance(choices, list | tuple) or len(choices) < 2:
        raise BenchmarkError(f"{where}: choices must be a list of at least two options")
    return [str(choice).strip() for choice in choices]


def read_jsonl(path: Path, answers: bool = True) -> list[MCItem]:
    rows = list(json_objects(decode_lenient(path), path, BenchmarkError))
    if not rows:
        raise BenchmarkError(f"{path}: empty benchmark file")
    first = rows[0][1]
    if {"goal", "sol1", "sol2"} <= first.keys():
        return _piqa(path, rows, answers)
    if {"question", "options"} <= first.keys():
        return [_agieval(path, number, row, answers) for number, row in rows]
    raise BenchmarkError(
        f"{path}: line {rows[0][0]}: unknown layout with fields {sorted(first)}; expected PIQA "
        "(goal, sol1, sol2) or AGIEval (passage, question, options, label)"
    )


def _piqa(path: Path, rows: list[tuple[int, dict]], answers: bool) -> list[MCItem]:
    name = benchmark_name(path)
    labels_file = path.with_name(f"{path.stem}-labels.lst")
    labels: list[tuple[str, object]]
    if not answers:
        labels = [(f"{path}: line {number}", None) for number, _ in rows]
    elif labels_file.is_file():
        lines = labels_file.read_text(encoding="utf-8").rstrip().splitlines()
        blank = next((i for i, v in enumerate(lines, 1) if not v.strip()), None)
        if blank:  # labels pair with questions by order: a gap would shift every one after it
            raise BenchmarkError(f"{labels_file}: line {blank} is blank, where a label belongs")
        labels = [(f"{labels_file}: line {i}", v) for i, v in enumerate(lines, 1)]
        if len(labels) != len(rows):
            raise BenchmarkError(
                f"{labels_file}: {len(labels)} labels for the {len(rows)} questions of {path}"
            )
    else:
        missing = [number for number, row in rows if "label" not in row]
        if missing:
            raise BenchmarkError(
                f"{path}: line {missing[0]}: no 'label' field and no {labels_file.name} beside it"
            )
        labels = [(f"{path}: line {number}", row["label"]) for number, row in rows]
    items = []
    for (number, row), (where, label) in zip(rows, labels, strict=True):
        for key in ("goal", "sol1", "sol2"):
            if not isinstance(row.get(key), str):
                raise BenchmarkError(f"{path}: line {number}: {key!r} must be a string")
        # as given, as the harness scores them: a solution may end in a space, which is then
        # part of the continuation and of acc_norm's length
        choices = [row["sol1"], row["sol2"]]
        check_texts(row["goal"], choices, f"{path}: line {number}")
        answer = answer_of(label, 2, where, answers)
        items.append(MCItem(name, f"{name}:{number}", row["goal"], choices, answer))
    return items


def _agieval(path: Path, number: int, row: dict, answers: bool) -> MCItem:
    where = f"{path}: line {number}"
    options = row.get("options")
    if not isinstance(options, list) or len(options) < 2:
        raise BenchmarkError(f"{where}: 'options' must be a list of at least two choices")
    choices = []
    for i, option in enumerate(options):
        if not isinstance(option, str):
            raise BenchmarkError(f"{where}: option {i + 1} is not a string")
        prefix = OPTION_PREFIX.match(option)
        if prefix and prefix.group(1) == LETTERS[i]:
            option = option[prefix.end() :]
        choices.append(option.strip())
    if answers and "label" not in row:
        raise BenchmarkError(f"{where}: no 'label' field (the letter of the right option)")
    answer = answer_of(row.get("label"), len(choices), where, answers)
    passage, question = (row.get(field) or "" for field in ("passage", "question"))
    if not isinstance(passage, str) or not isinstance(question, str):
        raise BenchmarkError(f"{where}: 'passage' and 'question' must be text")
    passage, question = passage.strip(), question.strip()
    check_texts(question, choices, where)
    text = f"{passage}\n\n{question}" if passage else question
    name = benchmark_name(path)
    return MCItem(name, f"{name}:{number}", text, choices, answer)
