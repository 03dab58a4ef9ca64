"""Data parallel on CPU: 2 gloo processes under torchrun (one node, or two joined by a
rendezvous) vs 1 process, same global batch."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_helpers import REPO, another_run_holding, read_metrics, train_args

from refinery.cli import main as refinery
from training.checkpoint import list_checkpoints

# 33 validation windows: 17 and 16 on two ranks, so one rank pads a forward (FSDP)
RUN = ["max_steps=6", "seed=3", "train.eval_every=3", "train.eval_tokens=2112"]


ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def launch(options: list[str], args: tuple[str, ...]) -> list[str]:
    launcher = Path(sys.executable).with_name("torchrun")
    command = [str(launcher) if launcher.exists() else shutil.which("torchrun"), *options]
    return [*command, "-m", "training.train", *args]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = launch(["--standalone", "--nproc_per_node", "2"], args)
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def single(tokens, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert refinery(train_args(tokens, out, *RUN)) == 0
    return read_metrics(out)


VARIANTS = {
    "ddp": ["train.parallel=ddp"],
    "fsdp": ["train.parallel=fsdp"],
    # FSDP gathers each block's weights a second time, for the backward's recomputation
    "fsdp-recompute": ["train.parallel=fsdp", "train.activation_checkpointing=true"],
    # the 1b preset's setting: the sharded model compiled whole
    "fsdp-compiled": ["train.parallel=fsdp", "train.compile=true"],
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_two_processes_match_one_at_the_same_global_batch(tokens, tmp_path, single, variant):
    out = tmp_path / variant
    args = train_args(tokens, out, *RUN, *VARIANTS[variant])[1:]  # drop "train"
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
def test_ddp_and_fsdp_train_a_moe_whose_experts_idle_on_one_rank(tokens, tmp_path):
    """8 experts, top-1, 2 sequences per rank: some expert gets no token on a rank."""
    moe = [*RUN[:2], "model.moe.num_experts=8", "model.moe.top_k=1", "train.micro_batch=2"]
    assert refinery(train_args(tokens, tmp_path / "one", *moe)) == 0
    figures = ("loss", "moe_balance_loss", "moe_dropped")  # the router's, summed over ranks too
    one = [[r[key] for key in figures] for r in read_metrics(tmp_path / "one")]
    for parallel in ("ddp", "fsdp"):
        out = tmp_path / parallel
        result = torchrun(*train_args(tokens, out, *moe, f"train.parallel={parallel}")[1:])
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [[r[key] for key in figures] for r in read_metrics(out)]
        assert [row[0] for row in rows] == pytest.approx([row[0] for row in one], rel=1e-5)
        assert [row[1:] for row in rows] == [pytest.approx(row[1:], rel=1e-5) for row in one]


@pytest.mark.slow
def test_two_nodes_joined_by_a_c10d_rendezvous_match_one_process(tokens, tmp_path, single):
    # multi-node as docs/TRAINING.md launches it: the same command on each node, here two
    # nodes of one process each, so a rank's RANK (data, logging) differs from its LOCAL_RANK
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rendezvous = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d"]
    rendezvous += ["--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "two-nodes"]
    out = tmp_path / "nodes"
    command = launch(rendezvous, tuple(train_args(tokens, out, *RUN)[1:]))
    nodes = [
        subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for node in nodes:
        _, err = node.communicate(timeout=300)
        assert node.returncode == 0, err.decode()[-3000:]
    rows = read_metrics(out)
    assert [r["loss"] for r in rows] == pytest.approx([r["loss"] for r in single], rel=1e-5)
    assert '"world_size": 2' in (out / "ckpt-6" / "meta.json").read_text()


def worker_pid(agent: subprocess.Popen, rank: int) -> int:
    """The pid of the torchrun worker that has RANK=`rank` (Linux /proc)."""
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()
    for pid in children:
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return int(pid)
    raise AssertionError(f"no worker with RANK={rank} among torchrun's children {children}")


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tokens, tmp_path):
    # a preemption signal reaches the nodes at different times: here only rank 1 gets it, and
    # rank 0 must still save the same step's checkpoint and stop with it
    settings = ["max_steps=60", "seed=5", "ckpt_every=50", "train.eval_every=0"]
    out = tmp_path / "preempted"
    args = tuple(train_args(tokens, out, *settings)[1:])
    command = launch(["--standalone", "--nproc_per_node", "2"], args)
    agent = subprocess.Popen(
        command, cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:  # a rank left waiting for the other would hang: never leave the group running
        metrics, deadline = out / "metrics.jsonl", time.monotonic() + 120
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
            assert agent.poll() is None and time.monotonic() < deadline, "no steps logged"
            time.sleep(0.005)
        os.kill(worker_pid(agent, 1), signal.SIGTERM)
        _, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
    assert agent.returncode == 0, err[-3000:]
    assert "stopped by a signal to another rank after step" in err  # printed by rank 0
    logged = len(read_metrics(out))
    assert logged < 60 and list_checkpoints(out)[-1][0] == logged

    result = torchrun(*args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    straight = tmp_path / "straight"
    assert refinery(train_args(tokens, straight, *settings)) == 0
    resumed, reference = read_metrics(out), read_metrics(straight)
    assert [r["step"] for r in resumed] == list(range(1, 61))
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in reference], rel=1e-5)


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


@pytest.mark.slow
def test_every_rank_stops_when_out_is_in_use(tokens, tmp_path):
    out = tmp_path / "busy"
    with another_run_holding(out):
        result = torchrun(*train_args(tokens, out, "max_steps=2")[1:])
    assert result.returncode != 0
    assert f"{out} is in use by another run" in result.stderr
    assert "rank 0 said why" in result.stderr  # rank 1 stopped too, not in a collective
    assert not (out / "metrics.jsonl").exists()


FSDP_DTYPES = """
import sys, torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from training.config import ModelConfig
from training.model import Transformer
from training.train import fsdp_mixed_precision

dist.init_process_group("gloo", init_method=f"file://{sys.argv[1]}", rank=0, world_size=1)
model = Transformer(ModelConfig(vocab_size=64, seq_len=16, n_layers=2, d_model=32, n_heads=4))
model.autocast_residual = sys.argv[2] == "bf16"
seen = []
for block in model.blocks:
    fully_shard(block, mp_policy=fsdp_mixed_precision())
    block.register_forward_pre_hook(lambda m, args: seen.append((args[0].dtype, args[1].dtype)))
fully_shard(model, mp_policy=fsdp_mixed_precision())
with torch.autocast("cpu", dtype=torch.bfloat16):
    model(torch.randint(0, 64, (2, 16)))
print(sorted({str(x) for pair in seen for x in pair}))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("residual", ["fp32", "bf16"])
def test_fsdp_mixed_precision_keeps_the_residual_and_rope_tables_in_their_dtype(tmp_path, residual):
    """FSDP's bf16 parameters on GPU (its policy, run here on CPU) left the residual stream
    bf16 whatever train.autocast_residual said, and rounded RoPE's cos/sin to bf16."""
    command = [sys.executable, "-c", FSDP_DTYPES, str(tmp_path / "store"), residual]
    done = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = ["torch.float32"] if residual == "fp32" else ["torch.bfloat16", "torch.float32"]
    assert done.stdout.split("\n")[-2] == str(expected)
