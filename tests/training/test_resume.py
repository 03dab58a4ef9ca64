"""Kill -9 mid-run, resume, and get bitwise the losses of an uninterrupted run (CPU)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import REPO, read_metrics, train_args

from refinery.cli import main as refinery
from training.checkpoint import list_checkpoints

RUN = ["max_steps=40", "ckpt_every=5", "seed=7", "train.eval_every=0", "train.keep_last=2"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tokens, tmp_path):
    reference = tmp_path / "reference"
    assert refinery(train_args(tokens, reference, *RUN)) == 0
    expected = read_metrics(reference)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "refinery.cli", *train_args(tokens, out, *RUN)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 13:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    logged = len(read_metrics(out))
    assert 13 <= logged < 40, "the kill should land mid-run"
    newest = list_checkpoints(out)[-1][0]
    assert newest % 5 == 0 and newest < 40

    assert refinery([*train_args(tokens, out, *RUN), "--resume"]) == 0
    resumed = read_metrics(out)
    assert [r["step"] for r in resumed] == list(range(1, 41))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in expected]
    assert [r["grad_norm"] for r in resumed] == [r["grad_norm"] for r in expected]
    assert resumed[-1]["val_loss"] == expected[-1]["val_loss"]
