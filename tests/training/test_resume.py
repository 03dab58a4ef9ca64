"""Stop a run mid-way (SIGKILL, or SIGTERM from a scheduler), resume, and get bitwise the
losses of an uninterrupted run (CPU)."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import REPO, read_metrics, train_args

from refinery.cli import main as refinery
from training.checkpoint import changed_settings, list_checkpoints
from training.config import TrainConfig

RUN = ["max_steps=40", "ckpt_every=5", "seed=7", "train.eval_every=0", "train.keep_last=2"]


@pytest.fixture(scope="module")
def reference(tokens, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    assert refinery(train_args(tokens, out, *RUN)) == 0
    return read_metrics(out)


def start_and_signal(tokens, out, sig: int, after_lines: int) -> subprocess.Popen:
    """Run the CLI in a subprocess; send `sig` once `after_lines` steps are logged."""
    cmd = [sys.executable, "-m", "refinery.cli", *train_args(tokens, out, *RUN)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= after_lines:
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    proc.wait()
    return proc


@pytest.mark.slow
def test_a_first_ctrl_c_stops_after_the_step_with_a_checkpoint(tokens, tmp_path):
    out = tmp_path / "interrupted"
    proc = start_and_signal(tokens, out, signal.SIGINT, after_lines=3)
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "Ctrl-C: stopping after this step" in stderr and "stopped by SIGINT" in stderr
    assert list_checkpoints(out)[-1][0] == len(read_metrics(out)) < 40


def assert_resume_matches(tokens, out, reference):
    assert refinery([*train_args(tokens, out, *RUN), "--resume"]) == 0
    resumed = read_metrics(out)
    assert [r["step"] for r in resumed] == list(range(1, 41))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in reference]
    assert [r["grad_norm"] for r in resumed] == [r["grad_norm"] for r in reference]
    assert resumed[-1]["val_loss"] == reference[-1]["val_loss"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tokens, tmp_path, reference):
    out = tmp_path / "killed"
    proc = start_and_signal(tokens, out, signal.SIGKILL, after_lines=13)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    logged = len(read_metrics(out))
    assert 13 <= logged < 40, "the kill should land mid-run"
    newest = list_checkpoints(out)[-1][0]
    assert newest % 5 == 0 and newest < 40
    assert_resume_matches(tokens, out, reference)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_then_resume_matches(tokens, tmp_path, reference):
    out = tmp_path / "preempted"
    proc = start_and_signal(tokens, out, signal.SIGTERM, after_lines=3)
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "stopped by SIGTERM" in stderr
    logged = len(read_metrics(out))
    assert logged < 40 and list_checkpoints(out)[-1][0] == logged
    assert_resume_matches(tokens, out, reference)


def test_a_resume_trains_with_its_optimizer_overrides(tokens, tmp_path, capsys):
    """Loading the optimizer's state put the checkpoint's betas, eps and weight decay back:
    the override was named as a change and then not applied."""
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=4", "ckpt_every=2")) == 0
    before = [row["loss"] for row in read_metrics(out)]
    shutil.rmtree(out / "ckpt-4")
    args = train_args(tokens, out, "max_steps=4", "ckpt_every=2", "optim.eps=0.5")
    assert refinery([*args, "--resume"]) == 0
    assert "optim.eps: 1e-08 -> 0.5" in capsys.readouterr().err
    after = [row["loss"] for row in read_metrics(out)]
    assert after[:3] == before[:3] and after[3] != before[3]


def test_a_resume_under_another_global_batch_states_the_tokens_it_will_reach(
    tokens, tmp_path, capsys
):
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=4", "ckpt_every=2")) == 0
    shutil.rmtree(out / "ckpt-4")
    capsys.readouterr()
    args = train_args(tokens, out, "max_steps=4", "train.global_batch_tokens=4096")
    assert refinery([*args, "--resume"]) == 0
    # 2 steps of 2,048 tokens, then 2 of 4,096: it said 4 x 4,096 = 16.4K
    assert "4 steps, 12.3K tokens;" in capsys.readouterr().out
    assert read_metrics(out)[-1]["tokens"] == 12_288


def test_a_ctrl_c_that_stops_at_once_is_one_line_from_each_node(monkeypatch, capsys):
    """`python -m training.sft` under torchrun: a second Ctrl-C raised a traceback a rank."""
    from training import sft
    from training.train import console

    def interrupted():
        raise KeyboardInterrupt

    interrupted.__module__ = sft.__name__
    for local_rank, said in (("0", True), ("1", False)):
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        assert console(interrupted) == 130
        err = capsys.readouterr().err.strip()
        assert err == (
            "sft: stopped by Ctrl-C; checkpoints are kept: --resume goes on from the newest"
            if said
            else ""
        )


def test_how_a_run_shows_its_progress_is_no_changed_setting():
    """A sweep or ablation rerun with train.progress=true reuses its finished points."""
    then = dataclasses.asdict(TrainConfig())
    now = TrainConfig()
    now.train.progress, now.train.tensorboard = not now.train.progress, True
    assert changed_settings(then, now) == []
    now.optim.lr = 1e-3
    assert changed_settings(then, now) == ["optim.lr: 0.003 -> 0.001"]
