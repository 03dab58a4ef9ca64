"""The trainer, post-training and evaluation on a CUDA GPU, each checked against the same run
on the CPU: the code paths no CPU test reaches (bf16 autocast, fused AdamW, pinned-memory
prefetch, the CUDA RNG state in checkpoints, compile, float8 and activation checkpointing on
the GPU, generation's KV cache under autocast). A lent device runs them in one call:

    python -m pytest -m gpu tests/training/test_device.py

Every test also runs with device "cpu", comparing the CPU with itself, so that a renamed
option breaks here and not on the device's clock.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from posttrain_helpers import posttrain_args, separable_pairs, write_jsonl
from train_helpers import REPO, read_metrics, train_args

from refinery.cli import main as refinery
from training.checkpoint import load_torch, resolve_checkpoint
from training.generate import generate
from training.pretrained import load_pretrained
from training.train import autocast

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)
# bf16 autocast against fp32: tiny models' losses agree to about 1% over 20 steps
LOSS_TOLERANCE = 0.03
STEPS = 20
PAIRS = 32


@pytest.fixture(scope="module", params=["cpu", CUDA])
def device(request) -> str:
    return request.param


def settings(device: str, *extra: str) -> list[str]:
    """A 20-step tiny pretraining with checkpoints and validation every 10 steps, profiling
    steps 5 and 6."""
    every = ["ckpt_every=10", "train.keep_last=0", "train.eval_every=10"]
    profile = ["train.profile_start=5", "train.profile_steps=2"]
    return [f"max_steps={STEPS}", *every, *profile, f"train.device={device}", *extra]


@pytest.fixture(scope="module")
def run(tokens, tmp_path_factory):
    """Run a tiny pretraining per device and settings once; returns its folder."""
    done = {}

    def train(device: str, *extra: str):
        key = (device, *extra)
        if key not in done:
            out = tmp_path_factory.mktemp(f"train-{device}")
            assert refinery(train_args(tokens, out, *settings(device, *extra))) == 0
            done[key] = out
        return done[key]

    return train


@pytest.fixture(scope="module")
def posttrain(pretrained, tmp_path_factory):
    """Run a post-training command per device once, from the same pretrained checkpoint."""
    root = tmp_path_factory.mktemp("posttrain")
    pairs = write_jsonl(root / "pairs.jsonl", separable_pairs(PAIRS))
    data = {
        "sft": REPO / "conf" / "posttrain" / "demo_sft.jsonl",
        "rm": pairs,
        "dpo": REPO / "conf" / "posttrain" / "demo_preferences.jsonl",
    }
    settings = {
        "sft": ["max_steps=6", "eval_every=3"],
        "rm": ["max_steps=6", "heldout=0.25"],
        "dpo": ["max_steps=6", "optim.lr=1e-3"],
    }
    done = {}

    def command(name: str, device: str):
        if (name, device) not in done:
            out = root / f"{name}-{device}"
            args = posttrain_args(name, pretrained, data[name], out, f"device={device}")
            assert refinery([*args, *settings[name]]) == 0
            done[name, device] = out
        return done[name, device]

    return command


def assert_losses_follow(rows: list[dict], reference: list[dict], key: str = "loss") -> None:
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    for row, ref in zip(rows, reference, strict=True):
        if key in ref:
            assert row[key] == pytest.approx(ref[key], rel=LOSS_TOLERANCE), (row["step"], key)


def test_training_follows_the_cpu_run(device, run):
    out = run(device)
    rows, reference = read_metrics(out), read_metrics(run("cpu"))
    assert_losses_follow(rows, reference)
    assert_losses_follow(rows, reference, "val_loss")
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5  # it learns: the comparison means something
    state = load_torch(resolve_checkpoint(out), "state.pt")
    if device == "cuda":
        assert rows[-1]["peak_mem_gib"] > 0
        assert state["rng_cuda"] is not None  # restored on resume
    assert all(0 <= r["data_wait"] < 1 for r in rows)
    table = (out / "profile" / "rank0-steps5-6.txt").read_text()
    assert ("Self CUDA" in table) == (device == "cuda")  # the GPU's kernels, timed


def test_resume_continues_the_run(device, run, tokens, tmp_path):
    straight = run(device)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(straight / "ckpt-10", resumed / "ckpt-10")
    shutil.copy(straight / "metrics.jsonl", resumed / "metrics.jsonl")
    assert refinery([*train_args(tokens, resumed, *settings(device)), "--resume"]) == 0
    rows, reference = read_metrics(resumed), read_metrics(straight)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    for row, ref in zip(rows[10:], reference[10:], strict=True):
        assert row["loss"] == pytest.approx(ref["loss"], rel=1e-3), row["step"]


def test_compiled_training_follows_eager(device, run):
    assert_losses_follow(read_metrics(run(device, "train.compile=true")), read_metrics(run(device)))


def test_activation_checkpointing_follows_the_plain_run(device, run):
    rows = read_metrics(run(device, "train.activation_checkpointing=true"))
    for row, reference in zip(rows, read_metrics(run(device)), strict=True):
        assert row["loss"] == pytest.approx(reference["loss"], rel=1e-3), row["step"]


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_float8_training_follows_bf16(device, run, rounding):
    if device == "cuda" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("float8 matmuls need compute capability 8.9 (Ada, Hopper)")
    fast = ["train.float8=true", "train.float8_head=true", "train.autocast_residual=true"]
    rows = read_metrics(run(device, *fast, f"train.float8_head_rounding={rounding}"))
    reference = read_metrics(run(device))
    assert rows[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=0.05)
    assert rows[-1]["val_loss"] == pytest.approx(reference[-1]["val_loss"], rel=0.05)


def test_anneal_continues_from_the_device_run(device, run, tmp_path):
    source = run(device)
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(source), f"out={out}", "max_steps=4", "ckpt_every=2"]
    args += ["anneal.average_last=2", "train.progress=false", f"train.device={device}"]
    assert refinery(args) == 0
    rows = read_metrics(out)
    assert rows[-1]["lr"] == pytest.approx(rows[0]["lr"] / 4)
    assert rows[0]["loss"] < read_metrics(source)[0]["loss"] - 0.5  # from the trained weights
    assert (out / "averaged" / "model.safetensors").is_file()


def test_sft_follows_the_cpu_run(device, posttrain):
    rows, reference = read_metrics(posttrain("sft", device)), read_metrics(posttrain("sft", "cpu"))
    assert_losses_follow(rows, reference)
    assert_losses_follow(rows, reference, "val_loss")


def test_reward_model_starts_at_log_2_and_follows_the_cpu_run(device, posttrain):
    rows = read_metrics(posttrain("rm", device))
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # zero-initialised head
    assert_losses_follow(rows, read_metrics(posttrain("rm", "cpu")))


def test_dpo_starts_at_log_2_and_learns(device, posttrain):
    rows = read_metrics(posttrain("dpo", device))
    # the reference log-probs and the first step's come from the same weights and precision
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-2)
    assert rows[-1]["loss"] < rows[0]["loss"] and rows[-1]["margin"] > 0
    assert_losses_follow(rows, read_metrics(posttrain("dpo", "cpu")))


def test_ppo_runs_rollouts_and_updates(device, pretrained, posttrain, tmp_path):
    out = tmp_path / "ppo"
    prompts = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
    reward = posttrain("rm", device)
    args = posttrain_args("ppo", pretrained, prompts, out, f"reward={reward}", f"device={device}")
    args += ["batch_size=4", "ppo.mini_batch=2", "ppo.ppo_epochs=2", "ppo.max_new_tokens=8"]
    assert refinery([*args, "max_steps=2"]) == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["kl"] == pytest.approx(0.0, abs=2e-2)  # the policy starts as the reference
    for row in rows:
        for key in ("loss", "reward", "kl", "entropy", "value_loss", "clip_fraction"):
            assert math.isfinite(row[key]), key
    assert load_pretrained(out).tokenizer() is not None


def test_eval_matches_the_cpu(device, pretrained, tmp_path, capsys):
    docs = tmp_path / "held_out.jsonl"
    docs.write_text('{"text": "The cat sees a red ball."}\n{"text": "A dog likes the sky."}\n')
    mc = REPO / "conf" / "eval" / "demo_mc.jsonl"

    def evaluate(on: str) -> dict:
        out = tmp_path / f"{on}.json"
        args = ["eval", "--ckpt", str(pretrained), "--mc", str(mc), "--bpb", str(docs)]
        assert refinery([*args, "--device", on, "--out", str(out)]) == 0
        return json.loads(out.read_text())

    found, reference = evaluate(device), evaluate("cpu")
    capsys.readouterr()
    assert found["bpb"][str(docs)] == pytest.approx(reference["bpb"][str(docs)], rel=0.02)
    # a near-tie between two choices may flip under bf16: at most 2 of the 20 items
    assert found["mc"]["demo_mc"]["acc"] == pytest.approx(
        reference["mc"]["demo_mc"]["acc"], abs=0.1
    )


def test_cached_generation_matches_the_full_forward(device, pretrained):
    model = load_pretrained(pretrained, device).model
    prompt = torch.tensor([[20, 31, 45, 50, 61, 70, 80]], device=device)
    cache = model.new_cache(torch.zeros(1, dtype=torch.long, device=device), 12)
    with torch.no_grad(), autocast(torch.device(device)):
        full = model(torch.cat([prompt, prompt[:, :5]], dim=1)).float()
        steps = [model.logits(model.hidden(prompt, cache))]
        steps += [model.logits(model.hidden(prompt[:, t : t + 1], cache)) for t in range(5)]
        incremental = torch.cat(steps, dim=1).float()
    scale = full.abs().max().item()
    torch.testing.assert_close(incremental, full, atol=0.02 * scale, rtol=0.02)

    def sample(seed: int) -> list[list[int]]:
        generator = torch.Generator(device).manual_seed(seed)
        return generate(model, [[20, 31], [33]], 8, top_k=20, stop_ids=(), generator=generator)

    assert sample(3) == sample(3)
    assert [len(tokens) for tokens in sample(3)] == [8, 8]
