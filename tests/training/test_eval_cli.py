"""`refinery eval` end to end on the tiny pretrained checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from refinery.cli import main as cli
from training.checkpoint import resolve_checkpoint

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "conf" / "eval" / "demo_mc.jsonl"
SHARED = REPO.parent / "shared" / "data" / "mc_eval"


def test_eval_prints_and_writes_mc_and_bpb(pretrained, tmp_path, capsys):
    docs = tmp_path / "held_out.jsonl"
    docs.write_text('{"text": "The cat sees a red ball."}\n{"text": "A dog likes the sky."}\n')
    out = tmp_path / "eval" / "results.json"
    args = ["eval", "--ckpt", str(pretrained), "--mc", str(DEMO), "--bpb", str(docs)]
    assert cli([*args, "--shots", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads(out.read_text())
    # progress on stderr: what is being scored, then its figures and time
    assert "eval: demo_mc: 20 items, 2 shots ..." in captured.err
    assert f"eval: {docs}: bits per byte of 2 documents ..." in captured.err
    demo = printed["mc"]["demo_mc"]
    assert demo["n"] == 20 and 0 <= demo["acc"] <= 1 and 0 <= demo["acc_norm"] <= 1
    assert demo["acc_stderr"] > 0 and demo["chance"] == 0.25  # four options per item
    assert 0 < printed["bpb"][str(docs)] < 8 and printed["perplexity"][str(docs)] > 1
    assert printed["shots"] == 2
    assert cli([*args, "--shots", "2", "--out", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text()) == printed  # deterministic


def test_a_stopped_evaluation_keeps_what_it_scored(pretrained, tmp_path, monkeypatch, capsys):
    docs = tmp_path / "held_out.txt"
    docs.write_text("The cat sees a red ball.\n")
    out = tmp_path / "results.json"

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C or a preempted job, after the benchmark

    monkeypatch.setattr("training.evaluate.bits_per_byte", stopped)
    args = ["--ckpt", str(pretrained), "--mc", str(DEMO), "--bpb", str(docs), "--out", str(out)]
    assert cli(["eval", *args]) == 130
    assert f"{out} holds the 1 scored before the stop" in capsys.readouterr().err
    kept = json.loads(out.read_text())
    assert kept["mc"]["demo_mc"]["n"] == 20 and kept["bpb"] == {}
    assert kept["pending"] == [str(docs)]


def test_every_benchmark_given_is_scored(pretrained, tmp_path, capsys):
    """--mc given twice scored only the last one (as --bpb, it takes several)."""
    other = tmp_path / "other.jsonl"
    shutil.copy(DEMO, other)
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(DEMO), "--mc", str(other)]) == 0
    scores = json.loads(capsys.readouterr().out)["mc"]
    assert sorted(scores) == ["demo_mc", "other"] and scores["demo_mc"] == scores["other"]
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(DEMO), "--shots", "100"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["mc"]["demo_mc"]["shots"] == 19
    assert "19 of the 100 shots asked (no more other items)" in said.err
    (tmp_path / "copy").mkdir()
    shutil.copy(DEMO, tmp_path / "copy" / DEMO.name)
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(DEMO), str(tmp_path / "copy")]) == 2
    assert "share the name 'demo_mc'" in capsys.readouterr().err


def test_a_checkpoint_with_an_extra_head_evaluates(pretrained, tmp_path, capsys):
    source = resolve_checkpoint(pretrained)
    reward = tmp_path / "rm" / source.name
    shutil.copytree(source, reward)
    weights = load_file(reward / "model.safetensors")
    weights["score_head.weight"] = torch.zeros(1, 64)
    save_file(weights, reward / "model.safetensors")
    assert cli(["eval", "--ckpt", str(reward), "--mc", str(DEMO)]) == 0
    assert json.loads(capsys.readouterr().out)["mc"]["demo_mc"]["n"] == 20


def test_bad_inputs_are_reported_without_a_traceback(pretrained, tmp_path, capsys):
    bad = tmp_path / "bench.jsonl"
    bad.write_text('{"question": "q", "options": ["a", "b"], "label": "Z"}\n')
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(bad)]) == 2
    assert "bench.jsonl: line 1: answer 'Z'" in capsys.readouterr().err
    assert cli(["eval", "--ckpt", str(tmp_path), "--mc", str(DEMO)]) == 2
    assert "neither a checkpoint folder" in capsys.readouterr().err
    assert cli(["eval", "--ckpt", str(tmp_path / "gone"), "--mc", str(DEMO)]) == 2
    assert "gone: no such checkpoint or run folder" in capsys.readouterr().err
    # a file of the checkpoint was "no such checkpoint or run folder", though it exists
    (weights,) = pretrained.glob("ckpt-*/model.safetensors")
    assert cli(["eval", "--ckpt", str(weights), "--mc", str(DEMO)]) == 2
    assert "model.safetensors: is a file: name its checkpoint or run folder" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli(["eval", "--ckpt", str(pretrained)])
    assert "nothing to evaluate" in capsys.readouterr().err
    inside = pretrained / "eval.json"
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(DEMO), "--out", str(inside)]) == 2
    assert f"inside {pretrained}, which this command reads" in capsys.readouterr().err
    bench = Path(shutil.copy(DEMO, tmp_path / "mine.jsonl"))
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", str(bench), "--out", str(bench)]) == 2
    assert "is a file this command reads" in capsys.readouterr().err
    assert bench.read_bytes() == DEMO.read_bytes()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/mc_eval is absent")
def test_mmlu_redux_flawed_rows_are_left_out_unless_asked(pretrained, capsys):
    bench = str(SHARED / "mmlu_redux" / "mmlu_machine_learning.csv")
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", bench]) == 0
    out, err = capsys.readouterr()
    scores = json.loads(out)["mc"]["mmlu_machine_learning"]
    assert scores["n"] == 89 and sum(scores["left_out"].values()) == 11
    assert "89 items (11 flawed rows left out)" in err
    assert cli(["eval", "--ckpt", str(pretrained), "--mc", bench, "--include-flawed"]) == 0
    scores = json.loads(capsys.readouterr().out)["mc"]["mmlu_machine_learning"]
    assert scores["n"] == 100 and "left_out" not in scores
