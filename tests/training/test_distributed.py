"""Data parallel on CPU: 2 gloo processes under torchrun vs 1 process, same global batch."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import REPO, read_metrics, train_args

from refinery.cli import main as refinery

RUN = ["max_steps=6", "seed=3", "train.eval_every=3"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    launcher = Path(sys.executable).with_name("torchrun")
    cmd = [str(launcher) if launcher.exists() else shutil.which("torchrun")]
    cmd += ["--standalone", "--nproc_per_node", "2", "-m", "training.train", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def single(tokens, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert refinery(train_args(tokens, out, *RUN)) == 0
    return read_metrics(out)


# recompute: FSDP gathers each block's weights a second time, for the backward's recomputation
@pytest.mark.slow
@pytest.mark.parametrize("parallel, recompute", [("ddp", False), ("fsdp", False), ("fsdp", True)])
def test_two_processes_match_one_at_the_same_global_batch(
    tokens, tmp_path, single, parallel, recompute
):
    out = tmp_path / parallel
    settings = [f"train.parallel={parallel}", f"train.activation_checkpointing={recompute}"]
    args = train_args(tokens, out, *RUN, *settings)[1:]  # drop "train"
    result = torchrun(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [r["step"] for r in single]
    for mine, ref in zip(rows, single, strict=True):
        assert mine["loss"] == pytest.approx(ref["loss"], rel=1e-5)
        assert mine["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-4)
    assert rows[-1]["val_loss"] == pytest.approx(single[-1]["val_loss"], rel=1e-5)
    meta = (out / "ckpt-6" / "meta.json").read_text()
    assert '"world_size": 2' in meta


@pytest.mark.slow
def test_fsdp_resume_from_gathered_checkpoint_is_exact(tokens, tmp_path):
    out = tmp_path / "fsdp"
    args = train_args(tokens, out, *RUN, "ckpt_every=3", "train.parallel=fsdp")[1:]
    assert torchrun(*args).returncode == 0
    full = read_metrics(out)
    shutil.rmtree(out / "ckpt-6")
    result = torchrun(*args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = read_metrics(out)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]


@pytest.mark.slow
def test_fsdp_shards_float8_layers(tokens, tmp_path):
    # train.float8 swaps the blocks' linear layers before fully_shard wraps each block; the
    # float8 head multiplies the tied embedding, which FSDP gathers for the root module
    out = tmp_path / "fsdp-float8"
    float8 = ["train.float8=true", "train.float8_head=true"]
    args = train_args(tokens, out, *RUN, "train.parallel=fsdp", *float8)[1:]
    result = torchrun(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(out)
    assert len(rows) == 6 and rows[-1]["loss"] < rows[0]["loss"]
