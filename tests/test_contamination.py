"""Contamination: n-gram overlap on planted benchmark text, plain functions and the Spark job."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.contamination import (
    EvalItem,
    build_index,
    contamination_report,
    gram_hashes,
    grams,
    ngrams,
    normalise,
    overlapping_items,
    text_ngram_hashes,
)

QUESTION = (
    "Which of the following planets has the longest day measured in Earth hours when "
    "compared with the others in the solar system?"
)
ITEMS = [
    EvalItem("astro", "astro:0", QUESTION, ("Venus", "Mars", "Jupiter", "Mercury")),
    EvalItem(
        "astro",
        "astro:1",
        "A rocket leaves the launch pad at dawn; how far has it travelled after ten "
        "minutes of constant acceleration from rest?",
        ("Far", "Near"),
    ),
    EvalItem("astro", "astro:2", "Is the sky blue?", ("Yes", "No")),  # 6 words with a choice
    EvalItem(
        "cooking",
        "cooking:0",
        "To keep freshly baked bread soft for several days you should store it in",
        ("a paper bag on the counter", "an airtight bag in the fridge"),
    ),
]
FILLER = " ".join(f"word{i}" for i in range(40))


def test_normalise_lowercases_and_spaces_punctuation():
    assert normalise("Don\u2019t STOP,it's «fine»!\nNew-line") == [
        "dont",
        "stop",
        "its",
        "fine",
        "new",
        "line",
    ]
    # what extraction leaves: entities, NBSP, soft hyphens, decomposed accents, full width
    assert normalise("Jose\u0301&#39;s x&nbsp;y encyclo\u00adpedia ＡＢ") == normalise(
        "José's x y encyclopedia AB"
    )
    assert normalise("a,b x - y") == normalise("a, b x-y")


def test_symbols_are_spaces_like_punctuation():
    """Maths items: `x+y` and `x + y`, a hyphen and the minus sign (as Wikipedia writes it)."""
    assert normalise("9^3-7 = x+y, $5") == normalise("9 ^ 3 \u2212 7=x + y 5") == [
        "9", "3", "7", "x", "y", "5"
    ]  # fmt: skip


def test_ngrams_need_n_words():
    words = ["a", "b", "c", "d"]
    assert ngrams(words, 3) == ["a b c", "b c d"]
    assert ngrams(words, 5) == []


def test_a_text_hashes_its_ngrams_as_the_index_hashes_them():
    """Documents' n-gram hashes come from a running sum over word hashes, items' from their
    gram strings: the two must agree on every gram, of every wanted length, and on no other."""
    text = "Ünïcode café x y, a b a b! \ud800 done " + FILLER
    words = normalise(text)
    lengths = (1, 3, 8, 13)
    expected = gram_hashes([g for n in lengths for g in ngrams(words, n)])
    assert text_ngram_hashes(text, lengths).tolist() == sorted(set(expected))
    assert len(set(expected)) == len(set(g for n in lengths for g in ngrams(words, n)))
    assert text_ngram_hashes(text, (len(words) + 1,)).size == 0
    assert text_ngram_hashes("", lengths).size == 0


def test_ngram_hashes_depend_on_word_order_and_boundaries():
    hashes = gram_hashes(["a b", "b a", "ab", "a ba", "ab a", "a b c", "b c a"])
    assert len(set(hashes)) == len(hashes)
    assert gram_hashes(grams(["x"] * 9, 13, 8)) != gram_hashes(grams(["x"] * 10, 13, 8))
    assert all(-(2**63) <= h < 2**63 for h in hashes)  # Spark's bigint


def test_planted_question_is_found_despite_case_and_punctuation():
    index = build_index(ITEMS)
    planted = f"{FILLER} {QUESTION.upper().replace(' ', ' , ')} {FILLER}"
    assert overlapping_items(planted, index) == ["astro:0"]
    assert overlapping_items(FILLER, index) == []


def test_question_with_its_answer_matches_across_the_boundary():
    index = build_index(ITEMS)
    # the last 11 words of the question and the 2-word choice make a 13-gram of their own
    tail = " ".join(ITEMS[3].question.split()[-11:])
    assert overlapping_items(f"{FILLER} {tail} an airtight {FILLER}", index) == ["cooking:0"]
    assert overlapping_items(f"{FILLER} {tail} {FILLER}", index) == []


@pytest.mark.parametrize(
    "prompt",
    [
        "Question: {q}\nA. {c0}\nB. {c1}\nAnswer: B",  # lm-evaluation-harness's MMLU prompt
        "Question: {q} Answer: {c1}",
    ],
)
def test_an_item_written_as_an_evaluation_prompt_is_found(prompt):
    question = "Which planet of our solar system is known as the red planet"  # 12 words
    item = EvalItem("quiz", "quiz:0", question, ("Venus", "Mars"))
    index = build_index([item])
    text = prompt.format(q=item.question, c0="Venus", c1="Mars")
    assert overlapping_items(f"{FILLER} {text} {FILLER}", index) == ["quiz:0"]


def test_short_items_are_reported_not_counted_clean():
    index = build_index(ITEMS)
    report = contamination_report(index, ["astro:1"])
    assert report["astro"] == {
        "items": 2,
        "unchecked": 1,
        "contaminated": 1,
        "share": 0.5,
        "contaminated_items": ["astro:1"],
    }
    assert report["cooking"]["share"] == 0.0
    short = build_index([EvalItem("tiny", "tiny:0", "Is it?", ("Yes", "No"))])
    assert contamination_report(short, [])["tiny"]["share"] is None  # nothing checked: not clean


def test_a_short_item_is_one_ngram_whole():
    """GPT-3 checked items under 13 words whole, down to 8: a page holding the question, or the
    question and its answer, flags it; a page holding part of it does not."""
    item = EvalItem("quiz", "quiz:0", "What gas do plants take in from the air?", ("Oxygen", "CO2"))
    index = build_index([item])
    assert index.unchecked == {} and index.items == {"quiz": ["quiz:0"]}
    assert index.lengths == (9, 10, 11, 13)  # the question; with a choice; with its letter too
    assert overlapping_items(f"{FILLER} {item.question} CO2. {FILLER}", index) == ["quiz:0"]
    assert overlapping_items(f"{FILLER} {item.question} {FILLER}", index) == ["quiz:0"]
    assert overlapping_items(f"{FILLER} what gas do plants take in {FILLER}", index) == []
    # the tail of a long question is not a whole text: an empty choice adds no 12-word gram
    long = EvalItem("quiz", "quiz:1", QUESTION, ("",))
    assert build_index([long]).lengths == (13,)


def test_an_item_whose_question_and_some_choice_are_too_short_is_unchecked():
    """Its text with that choice, perhaps the right one, has no n-gram: a page quoting it
    could not flag it, so the item is not counted clean."""
    question = "A diffraction grating relies on light"  # 6 words
    long_choices = ("refraction through a very thick prism of glass", "diffraction by many slits")
    item = EvalItem("phys", "phys:0", question, ("interference", *long_choices))
    assert build_index([item]).unchecked == {"phys": ["phys:0"]}
    every = EvalItem("phys", "phys:1", question, long_choices)
    assert build_index([every]).items == {"phys": ["phys:1"]}


def test_template_shared_by_many_items_is_ignored():
    template = "For which of these two scenarios does the main character do something clearly wrong"
    items = [
        EvalItem(
            "moral", f"moral:{i}", f"{template} Scenario {i}: I {FILLER.split()[i]}", ("Wrong",)
        )
        for i in range(12)
    ] + [EvalItem("moral", "moral:bare", template, ())]
    index = build_index(items, max_items=10)
    assert index.template_ngrams > 0
    assert index.unchecked == {"moral": ["moral:bare"]}  # nothing of its own beyond the template
    assert overlapping_items(f"{FILLER} {template} {FILLER}", index) == []
    assert overlapping_items(f"{template} Scenario 3: I word3 Wrong", index) == ["moral:3"]
    assert len(build_index(items, max_items=20).unchecked) == 0  # under the cut: kept


def test_duplicate_item_keys_are_refused():
    with pytest.raises(ValueError, match="astro:0 appears twice"):
        build_index([ITEMS[0], ITEMS[0]])


def test_lookup_in_an_empty_index_finds_nothing():
    import numpy as np

    from curation.spark.contamination import known_hashes

    hashes = np.array([-5, 3, 7], dtype=np.int64)
    assert known_hashes(hashes, np.zeros(0, dtype=np.int64)).tolist() == []
    assert known_hashes(hashes, np.array([-5, 7, 9], dtype=np.int64)).tolist() == [-5, 7]


def test_a_large_index_sends_only_the_hits_to_the_join():
    """Above BROADCAST_NGRAMS the tasks emit (id, n-gram) for n-grams the index holds, never
    every n-gram of every document."""
    from types import SimpleNamespace

    from curation.spark.contamination import hit_batches, sorted_hashes

    index = build_index(ITEMS)
    known = SimpleNamespace(value=sorted_hashes(index))
    batch = pa.RecordBatch.from_pydict(
        {"id": ["clean", "leak"], "text": [FILLER, f"{FILLER} {QUESTION} {FILLER}"]}
    )
    (out,) = hit_batches(index.lengths, known)(iter([batch]))
    assert set(out.column("id").to_pylist()) == {"leak"}
    hits = out.column("ngram").to_pylist()
    assert len(hits) == len(set(hits)) > 0
    assert {key for h in hits for key in index.ngrams[h]} == {"astro:0"}


def write_documents(path, texts: dict[str, str]) -> str:
    n = len(texts)
    table = pa.table(
        {
            "id": list(texts),
            "url": [f"https://example.com/{i}" for i in texts],
            "host": ["example.com"] * n,
            "text": list(texts.values()),
            "source": ["crawl.warc.gz"] * n,
            "record_id": [f"<urn:{i}>" for i in texts],
            "fetch_time": [datetime(2024, 1, 1, tzinfo=UTC)] * n,
            "offset": list(range(n)),
        }
    )
    path.mkdir(parents=True)
    pq.write_table(table, path / "part-0.parquet")
    return str(path)


PLANTED = {
    "clean-1": FILLER,
    "clean-2": "Bread is best eaten on the day it is baked. " + FILLER,
    "leak-question": f"Quiz night! {QUESTION} Answer below. {FILLER}",
    "leak-two": f"{ITEMS[1].question} {FILLER} {ITEMS[3].question} a paper bag",
}


@pytest.mark.parametrize("broadcast_ngrams", [1_000_000, 0])
def test_spark_finds_planted_documents(spark, tmp_path, broadcast_ngrams):
    from curation.spark.contamination import contaminated_documents, contaminated_item_keys
    from curation.spark.stage import read_documents

    docs = read_documents(spark, [write_documents(tmp_path / "docs", PLANTED)])
    found = contaminated_documents(spark, docs, build_index(ITEMS), broadcast_ngrams)
    if not broadcast_ngrams:  # the documents' n-grams are never broadcast (their Parquet is
        plan = found._jdf.queryExecution().executedPlan().toString()  # small, they are not)
        assert "BroadcastExchange" not in plan
    rows = {r["id"]: r["contaminated_items"] for r in found.collect()}
    assert rows == {"leak-question": ["astro:0"], "leak-two": ["astro:1", "cooking:0"]}
    assert contaminated_item_keys(found) == ["astro:0", "astro:1", "cooking:0"]


def test_inputs_whose_plans_do_not_go_together_are_refused_before_the_scan(
    spark, tmp_path, monkeypatch
):
    """A mix output and another documents folder: refused after the whole scan, the
    report's counts thrown away."""
    from curation.config import load_curation_config
    from curation.mix import MixError
    from jobs import contamination

    mixed = write_documents(tmp_path / "mix", PLANTED)
    plan = {"mixtures": {"pretrain": {"web": 1.0}}, "report": {"max_epochs": 4.0}}
    (Path(mixed) / "_mixture.json").write_text(json.dumps(plan))
    other = write_documents(tmp_path / "dedup", PLANTED)
    scanned = []
    monkeypatch.setattr(contamination, "build_index", lambda *a: scanned.append(a))
    with pytest.raises(MixError, match="dedup has no _mixture.json beside"):
        contamination.check_contamination(
            spark, load_curation_config(), [mixed, other], ITEMS, decontaminate=str(tmp_path / "c")
        )
    assert not scanned


def test_check_and_decontaminate_end_to_end(spark, tmp_path, capsys):
    from curation.config import load_curation_config
    from jobs.contamination import check_contamination

    docs = write_documents(tmp_path / "my docs", PLANTED)  # a URI writes the space as %20
    plan = {"mixtures": {"pretrain": {"web": 1.0}}, "report": {"max_epochs": 4.0}}
    (Path(docs) / "_mixture.json").write_text(json.dumps(plan))  # as if OUT/mix
    out2 = str(tmp_path / "clean")
    report = check_contamination(spark, load_curation_config(), [docs], ITEMS, decontaminate=out2)
    assert report["documents"] == {"input": 4, "contaminated": 2}
    assert report["benchmarks"]["astro"]["contaminated_items"] == ["astro:0", "astro:1"]
    assert report["benchmarks"]["astro"]["share"] == 1.0  # 2 checkable items, both leaked
    assert report["benchmarks"]["cooking"]["share"] == 1.0

    stats = json.loads((tmp_path / "clean/stats/contamination.json").read_text())
    assert stats["input"] == 4 and stats["kept"] == 2
    assert stats["rejected"] == {"contaminated": 2} and stats["errors"] == 0
    kept = pq.read_table(tmp_path / "clean/contamination").to_pydict()
    assert sorted(kept["id"]) == ["clean-1", "clean-2"]
    assert "contaminated_items" not in kept
    assert json.loads((tmp_path / "clean/contamination/_mixture.json").read_text()) == plan
    rejected = pq.read_table(tmp_path / "clean/rejected/stage=contamination").to_pydict()
    by_id = dict(zip(rejected["id"], rejected["contaminated_items"], strict=True))
    assert by_id == {"leak-question": ["astro:0"], "leak-two": ["astro:1", "cooking:0"]}
    assert set(rejected["reason"]) == {"contaminated"}
    assert rejected["text"][0]  # whole documents, not just ids

    # the decontaminated copy is clean
    again = check_contamination(
        spark, load_curation_config(), [str(tmp_path / "clean/contamination")], ITEMS
    )
    assert again["documents"]["contaminated"] == 0

    # the same folder again with other benchmarks keeps the copy, and says it was made so
    capsys.readouterr()
    check_contamination(spark, load_curation_config(), [docs], ITEMS, decontaminate=out2)
    assert "note:" not in capsys.readouterr().out  # the same everything: kept, no note
    check_contamination(spark, load_curation_config(), [docs], ITEMS[::-1], decontaminate=out2)
    assert "note:" not in capsys.readouterr().out  # the benchmarks read in another order
    check_contamination(spark, load_curation_config(), [docs], ITEMS[:1], decontaminate=out2)
    note = "contamination: note: it ran with other --input (or its files written since)"
    assert note in capsys.readouterr().out
    # so does input written again at the same path (its stage redone, say)
    time.sleep(0.01)  # a later modification time
    shutil.rmtree(docs)
    write_documents(Path(docs), {**PLANTED, "clean-3": "one more clean page of text"})
    check_contamination(spark, load_curation_config(), [docs], ITEMS, decontaminate=out2)
    assert note in capsys.readouterr().out
    run = json.loads((tmp_path / "clean/run.json").read_text())
    assert "contamination" not in run["config"]  # the stage's entry has it, not the config
    recorded = run["stages"]["contamination"]["contamination"]
    assert recorded["benchmarks"] == {"astro": 3, "cooking": 1} and recorded["ngram"] == 13


@pytest.mark.slow
def test_contamination_command_reads_benchmark_files(tmp_path):
    """`refinery contamination` as users run it: MMLU-style CSV through refinery.mc_data."""
    import csv
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent

    bench = tmp_path / "bench"
    bench.mkdir()
    with open(bench / "astro.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([QUESTION, "Venus", "Mars", "Jupiter", "Mercury", "A"])
        writer.writerow([ITEMS[1].question, "Far", "Near", "Both", "Neither", "A"])
    with open(bench / "mmlu_redux_x.csv", "w", newline="") as f:  # one ok row, two flawed
        writer = csv.writer(f)
        writer.writerow(["question", "choices", "answer", "error_type"])
        writer.writerow(["Which gas do plants take in from the air?", "['CO2', 'O2']", 0, "ok"])
        writer.writerow(["Which is the odd one?", "['a', 'b']", 1, "bad_question_clarity"])
        writer.writerow(["Which is the right one?", "['a', 'b']", 1, "wrong_groundtruth"])
    docs = write_documents(tmp_path / "docs", PLANTED)
    report_path = tmp_path / "report.json"
    command = [sys.executable, "-m", "refinery", "contamination", "--input", docs]
    command += ["--benchmarks", str(bench), "--out", str(report_path)]
    command += ["--decontaminate", str(tmp_path / "clean"), "spark.master=local[1]"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "contamination: 4 in, 2 kept, 2 rejected, 0 errors" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["benchmarks"]["astro"]["contaminated_items"] == ["astro:1", "astro:2"]
    assert report["documents"] == {"input": 4, "contaminated": 2}
    # flawed rows are test questions too: the report says they were not checked
    assert report["benchmarks"]["mmlu_redux_x"]["left_out"] == {
        "bad question clarity": 1,
        "wrong groundtruth": 1,
    }
    assert "2 MMLU-Redux rows annotated as flawed were not checked" in done.stdout


def write_tokens(root, texts: dict[str, str], validation: str):
    """A tokens folder in the manifest contract: one bucket of `texts`, one validation doc."""
    from training.synthetic import write_text_dataset

    return str(write_text_dataset(root, list(texts.values()), 300, [validation]))


def test_tokens_folder_is_decoded_and_checked(spark, tmp_path):
    from curation.config import load_curation_config
    from curation.inputs import InputError
    from jobs.contamination import check_contamination
    from refinery.shards import ShardError

    # the validation split leaks an item too, but it is never trained on: not reported
    text = " ".join(f"held{i}" for i in range(20))
    held_out = EvalItem("held", "held:0", text, ("yes",))
    tokens = write_tokens(tmp_path / "tokens", PLANTED, validation=held_out.question)
    report = check_contamination(spark, load_curation_config(), [tokens], [*ITEMS, held_out])
    assert report["template_ngrams_ignored"] == 0
    assert report["documents"] == {"input": 4, "contaminated": 2}
    assert report["benchmarks"]["astro"]["contaminated_items"] == ["astro:0", "astro:1"]
    assert report["benchmarks"]["cooking"]["contaminated_items"] == ["cooking:0"]
    assert report["benchmarks"]["held"]["contaminated"] == 0
    with pytest.raises(InputError, match="is a tokens folder: --decontaminate"):
        check_contamination(spark, load_curation_config(), [tokens], ITEMS, decontaminate="x")
    shard = Path(tokens) / "web" / "0.bin"  # damaged: named on the driver
    shard.write_bytes(b"XXTOKENS" + shard.read_bytes()[8:])
    with pytest.raises(ShardError, match=rf"{shard}: bad magic"):
        check_contamination(spark, load_curation_config(), [tokens], ITEMS)


def test_the_command_takes_a_tokens_folder_or_documents(tmp_path):
    from curation.inputs import InputError
    from jobs.contamination import resolve_contamination_inputs

    tokens = write_tokens(tmp_path / "tokens", PLANTED, validation="held out")
    assert resolve_contamination_inputs([tokens]) == [tokens]
    with pytest.raises(InputError, match=rf"--input {tokens} is a tokens folder: .* one at a"):
        resolve_contamination_inputs([tokens, str(tmp_path)])  # a tokens folder goes alone
    with pytest.raises(InputError, match="holds no Parquet file"):
        resolve_contamination_inputs([str(tmp_path / "tokens" / "web")])


def test_the_report_may_not_go_inside_the_documents_it_checks(tmp_path):
    from jobs.contamination import parse_args
    from refinery.errors import RefineryError

    docs = tmp_path / "dedup"
    docs.mkdir()
    command = ["--input", str(docs), "--benchmarks", str(tmp_path / "b.csv")]
    with pytest.raises(RefineryError, match=f"inside {docs}, which this command reads"):
        parse_args([*command, "--out", str(docs / "part-x.json")])
    assert parse_args([*command, "--out", str(tmp_path / "report.json")]).out


def test_a_benchmark_whose_labels_are_hidden_is_checked_all_the_same(tmp_path):
    """PIQA's test split ships without labels: eval refuses it, contamination reads it."""
    from jobs.contamination import eval_items
    from refinery.mc_data import BenchmarkError, read_benchmarks

    rows = [{"goal": "Keep bread fresh", "sol1": "Bag it", "sol2": "Wet it"}]
    (tmp_path / "piqa_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkError, match="no 'label' field"):
        read_benchmarks(tmp_path)
    (item,) = eval_items(str(tmp_path))
    assert (item.key, item.question, item.choices) == (
        "piqa_test:1",
        "Keep bread fresh",
        ("Bag it", "Wet it"),
    )


def test_a_decontaminate_folder_that_cannot_be_written_fails_before_the_scan(tmp_path):
    from jobs.common import OutputError
    from jobs.contamination import main

    docs = tmp_path / "docs"
    docs.mkdir()
    pq.write_table(pa.table({"id": ["a"], "url": ["u"], "text": ["t"]}), docs / "part-0.parquet")
    taken = tmp_path / "a-file"
    taken.write_text("")
    argv = ["--input", str(docs), "--benchmarks", str(tmp_path / "unread.jsonl")]
    with pytest.raises(OutputError, match=rf"--decontaminate {taken} is a file"):
        main([*argv, "--decontaminate", str(taken)])


def test_several_benchmarks_and_overrides_anywhere_on_the_command_line():
    """A second --benchmarks path was taken as a malformed override, and an override after
    --input as one more input."""
    from jobs.contamination import parse_args

    args = parse_args(
        ["--input", "docs", "spark.master=local[1]", "--benchmarks", "a.jsonl", "conf/eval"]
        + ["--benchmarks", "c.csv", "spark.app_name=x"]
    )
    assert args.input == ["docs"] and args.benchmarks == ["a.jsonl", "conf/eval", "c.csv"]
    assert args.overrides == ["spark.master=local[1]", "spark.app_name=x"]


def test_the_report_says_which_items_are_checked_whole_at_its_n_gram():
    from jobs.contamination import item_text

    assert item_text(13) == "question followed by each choice, whole when 8 to 12 words"
    assert item_text(5) == "question followed by each choice"  # 5 to 7 words have 5-grams
