"""Answer files for pairwise judging: AlpacaEval-style JSON or JSONL records
`{"instruction", "output", "generator"}`, paired across two files by instruction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from refinery.errors import RefineryError, unreadable_file
from refinery.jsonl import json_lines
from refinery.utf8 import LONE_SURROGATE, is_unicode, read_utf8


class AnswersError(RefineryError, ValueError):
    """An answer file that cannot be read, or two that do not answer the same instructions."""


@dataclass(frozen=True)
class Answer:
    instruction: str  # with the record's `input` appended when it has one (Alpaca format)
    output: str
    generator: str


@dataclass(frozen=True)
class Pair:
    instruction: str
    output_a: str
    output_b: str


def read_records(path: str | Path) -> list[tuple[str, object]]:
    """(where, record) of a JSON list of objects (`record N`) or JSONL (`line N`)."""
    path = Path(path)
    if not path.is_file():
        raise AnswersError(f"{path}: {unreadable_file(path)}")
    text = read_utf8(path, AnswersError)
    if not text.lstrip().startswith("["):
        return [(f"line {n}", record) for n, record in json_lines(text, path, AnswersError)]
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise AnswersError(f"{path}: not a valid JSON array: {err}") from None
    for i, record in enumerate(records, start=1):
        if not is_unicode(record):
            raise AnswersError(f"{path}: record {i} {LONE_SURROGATE}")
    return [(f"record {i}", record) for i, record in enumerate(records, start=1)]


def _instruction(record: object, path: str | Path, where: str) -> str:
    """The record's `instruction`, with its `input` appended when it has one (Alpaca)."""
    if not isinstance(record, dict) or not isinstance(record.get("instruction"), str):
        raise AnswersError(f"{path}: {where} needs a string `instruction`")
    if record.get("input"):
        return f"{record['instruction']}\n\n{record['input']}"
    return record["instruction"]


def _unique(instructions: list[tuple[str, str]], path: str | Path) -> None:
    """(where, instruction) pairs: a repeated instruction is an error naming its place."""
    seen: set[str] = set()
    for where, instruction in instructions:
        if instruction in seen:
            raise AnswersError(f"{path}: {where} repeats the instruction {instruction[:60]!r}")
        seen.add(instruction)
    if not instructions:
        raise AnswersError(f"{path}: no records")


def read_instructions(path: str | Path) -> list[str]:
    """The instructions of a JSON/JSONL file of records with `instruction` (any other fields,
    outputs included, are ignored): what `--a CKPT` answers."""
    instructions = [(where, _instruction(r, path, where)) for where, r in read_records(path)]
    _unique(instructions, path)
    return [instruction for _, instruction in instructions]


def read_answers(path: str | Path) -> list[Answer]:
    """Every record of `path` as an Answer; a record without a string `instruction` and
    `output`, or a repeated instruction, is an error naming its line (JSONL) or position."""
    answers: list[Answer] = []
    places: list[str] = []
    for where, record in read_records(path):
        instruction = _instruction(record, path, where)
        if not isinstance(record.get("output"), str):
            raise AnswersError(f"{path}: {where} needs a string `output`")
        generator = str(record.get("generator") or Path(path).stem)
        answers.append(Answer(instruction, record["output"], generator))
        places.append(where)
    _unique(list(zip(places, [a.instruction for a in answers], strict=True)), path)
    return answers


def write_answers(path: str | Path, answers: list[Answer]) -> None:
    """Answers in the AlpacaEval layout (what read_answers reads back)."""
    from refinery.results import write_results

    records = [
        {"instruction": a.instruction, "output": a.output, "generator": a.generator}
        for a in answers
    ]
    write_results(path, records)


def pair_answers(a: list[Answer], b: list[Answer], where: str = "answer files") -> list[Pair]:
    """Pairs in A's order; both files must answer exactly the same instructions."""
    by_instruction = {answer.instruction: answer.output for answer in b}
    in_a = {answer.instruction for answer in a}
    missing_b = [x.instruction for x in a if x.instruction not in by_instruction]
    missing_a = [x.instruction for x in b if x.instruction not in in_a]
    if missing_b or missing_a:
        firsts = [
            f"first missing in {side}: {missing[0][:60]!r}"
            for side, missing in (("B", missing_b), ("A", missing_a))
            if missing
        ]
        raise AnswersError(
            f"{where}: {len(missing_b)} instructions of A have no answer in B and "
            f"{len(missing_a)} of B none in A ({'; '.join(firsts)})"
        )
    return [Pair(x.instruction, x.output, by_instruction[x.instruction]) for x in a]
