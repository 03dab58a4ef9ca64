"""DPO: the loss against its closed form, log 2 at initialisation, the command end to end."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from posttrain_helpers import posttrain_args
from safetensors.torch import load_file, save_file
from train_helpers import REPO, read_metrics

from refinery.cli import main as refinery
from training.checkpoint import resolve_checkpoint
from training.dpo import dpo_loss
from training.pretrained import load_pretrained


def test_dpo_loss_equals_the_closed_form_on_a_hand_computed_example():
    # policy log-probs (chosen, rejected) = (-1.0, -2.0), reference = (-1.5, -1.0), beta 0.1:
    # chosen reward 0.1 * 0.5 = 0.05, rejected reward 0.1 * -1.0 = -0.1, margin 0.15,
    # loss = log(1 + e^-0.15) = 0.620957...
    losses, chosen, rejected = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.0]), 0.1
    )
    assert chosen.item() == pytest.approx(0.05)
    assert rejected.item() == pytest.approx(-0.1)
    assert losses.item() == pytest.approx(0.6209573, abs=1e-6)
    assert losses.item() == pytest.approx(math.log(1 + math.exp(-0.15)))


def test_dpo_loss_is_log_2_when_policy_equals_reference():
    logps = torch.tensor([-3.0, -7.5, -0.2])
    losses, chosen, rejected = dpo_loss(logps, logps.flip(0), logps, logps.flip(0), 0.1)
    torch.testing.assert_close(losses, torch.full((3,), math.log(2)))
    assert chosen.abs().max() == 0 and rejected.abs().max() == 0


def test_dpo_command_starts_at_log_2_and_learns_the_preferences(pretrained, tmp_path):
    data = REPO / "conf" / "posttrain" / "demo_preferences.jsonl"
    out = tmp_path / "dpo"
    args = posttrain_args("dpo", pretrained, data, out, "max_steps=12", "optim.lr=1e-3")
    assert refinery(args) == 0
    rows = read_metrics(out)
    # the first step's loss is computed before any update: policy == reference
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert rows[0]["margin"] == pytest.approx(0.0, abs=1e-5)
    for key in ("accuracy", "margin", "chosen_reward", "rejected_reward", "val_accuracy"):
        assert key in rows[-1], key
    assert rows[-1]["loss"] < rows[0]["loss"] and rows[-1]["margin"] > 0
    tuned = load_pretrained(out)
    assert tuned.path.name == "ckpt-12"
    assert "score_head.weight" not in tuned.weights


def test_a_dpo_resume_refuses_a_source_rewritten_in_place(pretrained, tmp_path, capsys):
    """The reference log-probs are the source's again on resume: other weights at the same
    path (an anneal's averaged/ written again) would change every loss after."""
    source = tmp_path / "source"
    shutil.copytree(pretrained, source)
    data = REPO / "conf" / "posttrain" / "demo_preferences.jsonl"
    out = tmp_path / "dpo"
    args = posttrain_args("dpo", source, data, out, "max_steps=2", "ckpt_every=1", "keep_last=0")
    assert refinery(args) == 0
    (out / "ckpt-2").rename(tmp_path / "moved")
    weights = resolve_checkpoint(source) / "model.safetensors"
    tensors = load_file(weights)
    save_file({name: t * 1.01 for name, t in tensors.items()}, weights)
    capsys.readouterr()
    assert refinery([*args, "--resume"]) == 2
    assert f"{weights} is not the source {out} started from" in capsys.readouterr().err
