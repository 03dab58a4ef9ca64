"""Post-training on 2 gloo processes matches 1 process at the same global batch: the loss
normaliser (supervised tokens, pairs) is summed over ranks, not averaged per rank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from posttrain_helpers import posttrain_args
from train_helpers import REPO, read_metrics

from refinery.cli import main as refinery

RUN = ["max_steps=3", "batch_size=8", "micro_batch=2", "device=cpu"]
DATA = {"sft": "demo_sft.jsonl", "dpo": "demo_preferences.jsonl"}
MODULE = {"sft": "training.sft", "dpo": "training.dpo"}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_two_processes_match_one(pretrained, tmp_path, command):
    data = REPO / "conf" / "posttrain" / DATA[command]
    single = tmp_path / "single"
    assert refinery(posttrain_args(command, pretrained, data, single, *RUN)) == 0
    launcher = Path(sys.executable).with_name("torchrun")
    cmd = [str(launcher) if launcher.exists() else shutil.which("torchrun")]
    cmd += ["--standalone", "--nproc_per_node", "2", "-m", MODULE[command]]
    cmd += posttrain_args(command, pretrained, data, tmp_path / "two", *RUN)[1:]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for mine, ref in zip(read_metrics(tmp_path / "two"), read_metrics(single), strict=True):
        for key in ("loss", "grad_norm", "val_loss"):
            if key in ref:
                assert mine[key] == pytest.approx(ref[key], rel=1e-4), key
