"""load_pretrained: a trainer checkpoint back as the same model, or a clear refusal."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.checkpoint import CheckpointError, resolve_checkpoint
from training.pretrained import load_pretrained


@pytest.fixture(scope="module")
def run(pretrained):
    return pretrained


def test_loads_the_trained_weights_from_a_run_folder(run):
    loaded = load_pretrained(run)
    assert loaded.path == resolve_checkpoint(run)
    assert loaded.config.model.d_model == 64
    saved = load_file(loaded.path / "model.safetensors")
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, saved[name])
    tokens = torch.randint(0, loaded.config.model.vocab_size, (1, 8))
    assert loaded.model(tokens).shape == (1, 8, loaded.config.model.vocab_size)


def test_refuses_weights_that_do_not_match_the_config(run, tmp_path):
    broken = tmp_path / "ckpt-2"
    broken.mkdir()
    for child in resolve_checkpoint(run).iterdir():
        (broken / child.name).write_bytes(child.read_bytes())
    weights = load_file(broken / "model.safetensors")
    weights["norm.weight"] = torch.ones(3)
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match="norm.weight has shape"):
        load_pretrained(broken)
    del weights["norm.weight"]
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match="lacks 1 weights"):
        load_pretrained(broken)
    # a weight the config does not describe (an untied head under a tied config) is refused;
    # the heads other commands own stay in `weights`
    weights["norm.weight"] = torch.ones(weights["blocks.0.attn_norm.weight"].shape)
    weights["lm_head.weight"] = weights["embed.weight"].clone()
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"holds 1 weights .* \(first: lm_head.weight\)"):
        load_pretrained(broken)
    del weights["lm_head.weight"]
    weights["value_head.weight"] = torch.zeros(1, weights["embed.weight"].shape[1])
    save_file(weights, broken / "model.safetensors")
    assert "value_head.weight" in load_pretrained(broken).weights


def test_the_tokenizer_comes_with_the_checkpoint(run, tmp_path):
    loaded = load_pretrained(run)
    assert loaded.tokenizer().token_to_id("<|end_of_turn|>") == 6
    (loaded.path / "tokenizer.json").rename(tmp_path / "moved.json")
    try:
        with pytest.raises(CheckpointError, match="no tokenizer.json"):
            load_pretrained(run).tokenizer()
    finally:
        (tmp_path / "moved.json").rename(loaded.path / "tokenizer.json")


def test_the_pretrained_fixture_learned_the_text(run):
    from train_helpers import read_metrics

    losses = [m["loss"] for m in read_metrics(run)]
    assert losses[-1] < losses[0] - 1.0
