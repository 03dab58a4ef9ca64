"""Pairwise judging: answer files, position swapping, the prompted judge on a tiny checkpoint."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from training.checkpoint import resolve_checkpoint
from training.evaluation.answers import AnswersError, Pair, pair_answers, read_answers
from training.evaluation.judge import share_budget, swapped_preferences

INSTRUCTIONS = ["Name a red fruit.", "Say hello.", "Count to three."]


def first_position_lover(triples):
    """Prefers whatever is shown first, however good it is."""
    return np.full(len(triples), 0.9)


def longer_with_bias(triples):
    """Prefers the longer response, and adds a push towards the first position."""
    return np.array([0.8 if len(f) > len(s) else 0.4 for _, f, s in triples])


def test_position_bias_cancels_on_identical_answers():
    pairs = [Pair(i, "same answer", "same answer") for i in INSTRUCTIONS]
    preference, first = swapped_preferences(first_position_lover, pairs)
    assert preference == pytest.approx([0.5] * 3)
    assert first.mean() == pytest.approx(0.9)  # the bias is measured, not hidden


def test_swapping_keeps_a_real_preference():
    pairs = [Pair(i, "a long and careful answer", "short") for i in INSTRUCTIONS]
    preference, _ = swapped_preferences(longer_with_bias, pairs)
    assert preference == pytest.approx([0.7] * 3)  # (0.8 + (1 - 0.4)) / 2
    reverse, _ = swapped_preferences(
        longer_with_bias, [Pair(p.instruction, p.output_b, p.output_a) for p in pairs]
    )
    assert reverse == pytest.approx(1 - preference)


def test_share_budget_water_fills():
    assert share_budget([5, 100, 100], 45) == [5, 20, 20]
    assert share_budget([5, 6, 7], 100) == [5, 6, 7]
    assert sum(share_budget([50, 60, 70], 31)) <= 31


def write_answers(path, outputs, generator="m", jsonl=False, instructions=INSTRUCTIONS):
    records = [
        {"instruction": i, "output": o, "generator": generator}
        for i, o in zip(instructions, outputs, strict=True)
    ]
    if jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records))
    return path


def test_answers_pair_by_instruction_across_formats(tmp_path):
    a = write_answers(tmp_path / "a.json", ["apple", "hello", "1 2 3"])
    b = write_answers(
        tmp_path / "b.jsonl", ["hi", "one two three", "cherry"], jsonl=True,
        instructions=[INSTRUCTIONS[1], INSTRUCTIONS[2], INSTRUCTIONS[0]],
    )  # fmt: skip
    pairs = pair_answers(read_answers(a), read_answers(b))
    assert pairs[0] == Pair("Name a red fruit.", "apple", "cherry")
    assert [p.output_b for p in pairs] == ["cherry", "hi", "one two three"]


def test_alpaca_input_joins_the_instruction(tmp_path):
    path = tmp_path / "a.json"
    record = {"instruction": "Translate.", "input": "chat", "output": "cat"}
    path.write_text("\ufeff" + json.dumps([record]), encoding="utf-8")  # a byte-order mark too
    (answer,) = read_answers(path)
    assert answer.instruction == "Translate.\n\nchat" and answer.generator == "a"


def test_bad_answer_files_name_the_problem(tmp_path):
    with pytest.raises(AnswersError, match="not found"):
        read_answers(tmp_path / "missing.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'[{"instruction": "caf\xe9", "output": "y"}]')
    with pytest.raises(AnswersError, match=r"latin.json: line 1: byte b'\\xe9' is not UTF-8"):
        read_answers(latin)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n\n{"instruction": "z"}\n')
    with pytest.raises(AnswersError, match="bad.jsonl: line 3 needs a string `output`"):
        read_answers(bad)
    twice = write_answers(tmp_path / "twice.json", ["a", "b"], instructions=["q", "q"])
    with pytest.raises(AnswersError, match="record 2 repeats the instruction"):
        read_answers(twice)
    a = write_answers(tmp_path / "a.json", ["x", "y", "z"])
    b = write_answers(tmp_path / "b.json", ["x", "y"], instructions=INSTRUCTIONS[:2])
    with pytest.raises(AnswersError, match="1 instructions of A have no answer in B"):
        pair_answers(read_answers(a), read_answers(b))
    only_b = re.escape(f"1 of B none in A (first missing in A: {INSTRUCTIONS[2]!r})")
    with pytest.raises(AnswersError, match=only_b):
        pair_answers(read_answers(b), read_answers(a))  # the one only B answers is named


@pytest.fixture(scope="module")
def judge(pretrained):
    import torch

    from training.evaluation.judge import PromptJudge
    from training.pretrained import load_pretrained

    model = load_pretrained(pretrained)
    return PromptJudge(model.model, model.tokenizer(), torch.device("cpu"), batch_size=2)


def test_prompted_judge_is_position_fair_on_identical_answers(judge):
    pairs = [Pair(i, "The cat sees a red ball.", "The cat sees a red ball.") for i in INSTRUCTIONS]
    preference, first = swapped_preferences(judge, pairs)
    assert preference == pytest.approx([0.5] * 3, abs=1e-6)
    assert np.all((first > 0) & (first < 1))


def test_prompted_judge_cuts_long_prompts_to_its_context(judge):
    long = "The teacher paints the old house. " * 40
    ids = judge.prompt(INSTRUCTIONS[0], long, "A dog.")
    assert len(ids) <= judge.max_len
    assert ids[-1] == judge.tokenizer.token_to_id("<|assistant|>")
    assert judge.truncated >= 1
    preference = judge([(INSTRUCTIONS[0], long, "A dog."), (INSTRUCTIONS[1], "a", "b")])
    assert preference.shape == (2,) and np.all((preference > 0) & (preference < 1))
    # answers that differ only past the cut are shown the judge as the same text
    before = judge.identical
    judge.prompt(INSTRUCTIONS[0], long + "And more.", long)
    assert judge.identical == before + 1
    judge.prompt(INSTRUCTIONS[0], long, long)  # the same answers: nothing the cut hid
    assert judge.identical == before + 1


def test_judge_command_writes_results(pretrained, tmp_path, capsys):
    from refinery.cli import main as cli

    a = write_answers(tmp_path / "a.json", ["A red apple.", "Hello there, friend!", "1, 2, 3."])
    b = write_answers(tmp_path / "b.jsonl", ["Cherry.", "Hi.", "One."], jsonl=True)
    out = tmp_path / "results.json"
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", str(pretrained), "--out", str(out)]
    assert cli([*args, "--device", "cpu"]) == 0
    results = json.loads(out.read_text())["judge"]
    assert results["n"] == 3
    assert 0 < results["win_rate"] < 100 and 0 < results["lc_win_rate"] < 100
    assert results["avg_len_a"] == pytest.approx(np.mean([12, 20, 8]))
    assert results["avg_len_b"] == pytest.approx(np.mean([7, 3, 4]))
    assert {"win_rate_stderr", "lc_win_rate_stderr", "first_position_preference"} <= set(results)
    assert results["a_longer_share"] == 1.0  # so the LC rate is an extrapolation, and says so
    assert "A's answer is the longer in every pair" in capsys.readouterr().err
    assert results["identical_after_cut"] == 0
    # one length difference for every pair: no fit to extrapolate, LC is the raw rate
    same = write_answers(tmp_path / "same.json", ["Cherry. ok!", "Hi. ok!", "One. ok!"])
    args = ["judge", "--a", str(same), "--b", str(b), "--judge", str(pretrained), "--out", str(out)]
    assert cli([*args, "--device", "cpu"]) == 0
    results = json.loads(out.read_text())["judge"]
    assert results["length_difference_sd"] == 0
    assert results["lc_win_rate"] == results["win_rate"]
    err = capsys.readouterr().err
    assert "the length-controlled rate is the raw one" in err
    assert "longer in every pair" not in err


def test_checkpoint_answers_the_instructions(pretrained, tmp_path, capsys):
    from refinery.cli import main as cli

    b = write_answers(tmp_path / "b.json", ["Cherry.", "Hi.", "One."])
    out = tmp_path / "results.json"
    args = ["judge", "--a", str(pretrained), "--b", str(b), "--instructions", str(b)]
    args += ["--judge", str(pretrained), "--out", str(out), "--device", "cpu"]
    assert cli([*args, "--max-new-tokens", "8"]) == 0
    generated = read_answers(tmp_path / "results.a.json")
    assert [g.instruction for g in generated] == INSTRUCTIONS
    assert "instructions did not fit" not in capsys.readouterr().err
    assert {g.generator for g in generated} == {"train"}  # the run folder's name
    assert json.loads(out.read_text())["judge"]["n"] == 3
    assert cli(["judge", "--a", str(pretrained), "--b", str(b), "--judge", str(pretrained)]) == 2
    assert "is a checkpoint: give --instructions FILE" in capsys.readouterr().err
    files = ["judge", "--a", str(b), "--b", str(b), "--judge", str(pretrained)]
    assert cli([*files, "--instructions", str(tmp_path / "missing.json")]) == 2
    assert "is answered only by a checkpoint given as --a or --b" in capsys.readouterr().err
    zero = ["judge", "--a", str(b), "--b", str(b), "--judge", str(pretrained), "--batch-size", "0"]
    with pytest.raises(SystemExit):
        cli(zero)
    assert "--batch-size must be >= 1, got 0" in capsys.readouterr().err


def test_a_wrong_judge_or_instructions_are_said_before_any_answer_is_sampled(
    pretrained, tmp_path, capsys, monkeypatch
):
    from refinery.cli import main as cli
    from training.evaluation import judge

    def sample(*args):
        raise AssertionError("sampled")

    monkeypatch.setattr(judge, "answer_instructions", sample)
    b = write_answers(tmp_path / "b.json", ["Cherry.", "Hi.", "One."])
    args = ["judge", "--a", str(pretrained), "--b", str(b), "--device", "cpu"]
    assert (
        cli([*args, "--instructions", str(b), "--judge", str(pretrained), "--kind", "reward"]) == 2
    )
    assert "is a language model, not a reward model: --kind reward needs the other" in (
        capsys.readouterr().err
    )
    fewer = write_answers(tmp_path / "fewer.json", ["a", "b"], instructions=INSTRUCTIONS[:2])
    assert cli([*args, "--instructions", str(fewer), "--judge", str(pretrained)]) == 2
    assert (
        f"--b {b} answers 1 instructions that --instructions {fewer} lacks and lacks 0 of its"
        in capsys.readouterr().err
    )
    no_config = tmp_path / "no-config"
    shutil.copytree(resolve_checkpoint(pretrained), no_config)
    (no_config / "config.json").unlink()
    assert cli([*args, "--instructions", str(b), "--judge", str(no_config)]) == 2
    assert f"{no_config / 'config.json'}: missing from the checkpoint" in capsys.readouterr().err
    short = tmp_path / "short-context"
    shutil.copytree(resolve_checkpoint(pretrained), short)
    config = json.loads((short / "config.json").read_text())
    config["model"]["seq_len"] = 8
    (short / "config.json").write_text(json.dumps(config))
    assert cli([*args, "--instructions", str(b), "--judge", str(short)]) == 2
    assert "the judge's context of 8 tokens cannot hold the judging prompt" in (
        capsys.readouterr().err
    )
    del config["model"]["seq_len"]  # the default fills it in, as when the judge is loaded
    (short / "config.json").write_text(json.dumps(config))
    judge.check_judge(str(short), "prompt")


def test_judge_never_writes_over_its_inputs(pretrained, tmp_path, capsys):
    from refinery.cli import main as cli

    a = write_answers(tmp_path / "a.json", ["A red apple.", "Hello there, friend!", "1, 2, 3."])
    b = write_answers(tmp_path / "b.json", ["Cherry.", "Hi.", "One."])
    before = a.read_text()
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", str(pretrained), "--device", "cpu"]
    assert cli([*args, "--out", str(a)]) == 2
    assert f"--out {a}: is a file this command reads" in capsys.readouterr().err
    sampled = ["judge", "--a", str(pretrained), "--b", str(b), "--instructions", str(b)]
    sampled += ["--judge", str(pretrained), "--device", "cpu"]
    assert cli([*sampled, "--out", str(tmp_path / "b.json")]) == 2  # and its sampled answers
    over_b = ["--out", str(tmp_path / "r.json"), "--b", str(tmp_path / "r.a.json")]
    assert cli([*sampled, *over_b]) == 2
    assert "would overwrite --b" in capsys.readouterr().err
    assert a.read_text() == before


def test_a_cut_instruction_keeps_the_assistant_tag(pretrained):
    from training.evaluation.respond import chat_prompt
    from training.pretrained import load_pretrained

    tokenizer = load_pretrained(pretrained).tokenizer()
    for instruction in ("请解释一下量子力学的基本原理。" * 8, "The teacher paints a house. " * 20):
        ids = chat_prompt(tokenizer, instruction, 32)
        assert len(ids) <= 32
        assert ids[-1] == tokenizer.token_to_id("<|assistant|>")


def test_instructions_cut_to_answer_them_are_said(pretrained, capsys):
    import torch

    from training.evaluation.respond import Sampling, answer_instructions

    long = "The teacher paints a house. " * 40
    sampling = Sampling(max_new_tokens=4)
    answers = answer_instructions(pretrained, [long, "Hi."], torch.device("cpu"), sampling)
    assert len(answers) == 2 and answers[0].instruction == long  # the record keeps it whole
    assert "1 of the 2 instructions did not fit its context of" in capsys.readouterr().err


@pytest.fixture(scope="module")
def reward_run(pretrained, tmp_path_factory):
    """A reward model trained to prefer answers starting "yes" (posttrain_helpers)."""
    from posttrain_helpers import posttrain_args, separable_pairs, write_jsonl

    from refinery.cli import main as cli

    root = tmp_path_factory.mktemp("rm")
    data = write_jsonl(root / "pairs.jsonl", separable_pairs(60))
    out = root / "rm"
    assert cli([*posttrain_args("rm", pretrained, data, out, "max_steps=30"), "batch_size=16"]) == 0
    return out


def test_reward_judge_prefers_what_the_reward_model_learned(reward_run, tmp_path):
    from posttrain_helpers import separable_pairs

    from refinery.cli import main as cli

    fresh = separable_pairs(12, seed=7)
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(
        "".join(
            json.dumps({"instruction": p["prompt"], "output": p["chosen"]}) + "\n" for p in fresh
        )
    )
    b.write_text(
        "".join(
            json.dumps({"instruction": p["prompt"], "output": p["rejected"]}) + "\n" for p in fresh
        )
    )
    out = tmp_path / "results.json"
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", str(reward_run), "--kind", "reward"]
    assert cli([*args, "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads(out.read_text())["judge"]
    assert results["win_rate"] > 80
    assert results["first_position_preference"] == pytest.approx(0.5)  # scored one at a time
    assert results["truncated_answers"] == 0


def test_reward_judge_counts_and_says_the_chats_it_cut(reward_run, tmp_path, capsys):
    """Scored on their last seq_len tokens, two answers with one long tail score alike: a
    50 % win rate that would otherwise look like a verdict."""
    from refinery.cli import main as cli

    tail = " the same long tail" * 80
    a = write_answers(tmp_path / "a.json", ["yes, right." + tail, "ok.", "1, 2, 3."])
    b = write_answers(tmp_path / "b.json", ["no, wrong." + tail, "ok!", "one."])
    out = tmp_path / "results.json"
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", str(reward_run), "--kind", "reward"]
    assert cli([*args, "--out", str(out), "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["judge"]["truncated_answers"] == 4  # 2 chats, twice
    assert "judge: 4 of the 12 scored chats did not fit the judge's context of" in (
        capsys.readouterr().err
    )


def test_batched_verdicts_match_one_prompt_at_a_time(judge):
    """Right padding in a batch leaves each prompt's verdict as if it ran alone."""
    import torch

    triples = [
        (INSTRUCTIONS[0], "A dog.", "The cat sees the old house."),
        (INSTRUCTIONS[1], "a", "b"),
    ]
    batched = judge(triples)
    for triple, p in zip(triples, batched, strict=True):
        ids = torch.tensor([judge.prompt(*triple)])
        logits = judge.model(ids)[0, -1]
        a, b = judge.verdict_ids
        assert p == pytest.approx(torch.sigmoid(logits[a] - logits[b]).item(), abs=1e-5)
