"""Reward model: Bradley–Terry loss, scoring at the last token, > 90% on a separable toy set."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from posttrain_helpers import posttrain_args, separable_pairs, write_jsonl
from train_helpers import read_metrics

from refinery.cli import main as refinery
from training.checkpoint import CheckpointError, resolve_checkpoint
from training.posttrain import PAD_ID, encode_supervised
from training.pretrained import load_pretrained
from training.reward import RewardModel, bradley_terry_loss, load_reward_model


def test_bradley_terry_loss():
    chosen, rejected = torch.tensor([0.0, 2.0, 1.0]), torch.tensor([0.0, 1.0, 3.0])
    expected = [math.log(2), math.log(1 + math.exp(-1)), math.log(1 + math.exp(2))]
    torch.testing.assert_close(bradley_terry_loss(chosen, rejected), torch.tensor(expected))
    with_margin = bradley_terry_loss(chosen, rejected, margin=1.0)
    torch.testing.assert_close(with_margin[1], torch.tensor(math.log(2)))


def test_score_reads_the_last_real_token(pretrained):
    pre = load_pretrained(pretrained)
    model = RewardModel(pre.config.model)
    torch.manual_seed(0)  # the head, not whatever the global generator holds after other tests
    torch.nn.init.normal_(model.score_head.weight)
    tokens = torch.tensor([[0, 10, 11, 12, 6], [0, 10, 11, 6, PAD_ID]])
    scores = model(tokens, torch.tensor([5, 4]))
    alone = model(tokens[1:, :4], torch.tensor([4]))
    torch.testing.assert_close(scores[1], alone[0], rtol=1e-4, atol=1e-5)  # batched vs alone
    # the score is the head applied to the hidden state of the last real token
    hidden = model.hidden(tokens[:1])[0, -1]
    torch.testing.assert_close(scores[0], model.score_head(hidden)[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.score([[0, 10, 11, 6], [0, 10, 11, 12, 6]]), scores.flip(0))
    # a sampled answer may hold a PAD id: the score is still read at its end
    sampled = [0, 10, PAD_ID, 12, 6]
    hidden = model.hidden(torch.tensor([sampled]))[0, -1]
    expected = model.score_head(hidden)[0]
    torch.testing.assert_close(model.score([sampled, [0, 10]])[0], expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def reward_run(pretrained, tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    data = write_jsonl(root / "pairs.jsonl", separable_pairs(60))
    out = root / "rm"
    args = posttrain_args("rm", pretrained, data, out, "max_steps=30", "heldout=0.25")
    assert refinery([*args, "batch_size=16", "eval_every=10"]) == 0
    return out, data


def test_reward_model_separates_a_toy_preference_set(reward_run):
    out, _ = reward_run
    rows = read_metrics(out)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # zero-initialised head
    assert all("accuracy" in r and "margin" in r for r in rows)
    assert "val_accuracy" in rows[9] and "val_accuracy" not in rows[10]
    assert rows[-1]["val_accuracy"] > 0.9
    assert rows[-1]["val_margin"] > 0


def test_load_reward_model_scores_chosen_above_rejected(reward_run, pretrained):
    out, _ = reward_run
    model = load_reward_model(out)
    assert isinstance(model, RewardModel) and not model.training
    tokenizer = load_pretrained(out, accept_reward_model=True).tokenizer()
    fresh = separable_pairs(20, seed=7)  # never seen in training
    sequences = []
    for pair in fresh:
        for answer in (pair["chosen"], pair["rejected"]):
            conversation = [
                {"role": "user", "content": pair["prompt"]},
                {"role": "assistant", "content": answer},
            ]
            sequences.append(encode_supervised(tokenizer, conversation)[0])
    scores = model.score(sequences)
    assert scores.shape == (40,)
    assert (scores[0::2] > scores[1::2]).float().mean() > 0.9
    with pytest.raises(CheckpointError, match="no score_head"):
        load_reward_model(pretrained)
    loaded = load_pretrained(resolve_checkpoint(out), accept_reward_model=True)
    assert "score_head.weight" in loaded.weights


def test_a_reward_model_is_refused_where_a_language_model_is_expected(reward_run, tmp_path, capsys):
    out, pairs = reward_run
    assert refinery(posttrain_args("dpo", out, pairs, tmp_path / "dpo", "max_steps=1")) == 2
    assert "is a reward model (refinery rm)" in capsys.readouterr().err
    assert not (tmp_path / "dpo").exists()
    assert refinery(["generate", "--ckpt", str(out), "--prompt", "Hi", "--chat"]) == 2
    assert "is a reward model" in capsys.readouterr().err
    # a reward model continues as one
    more = posttrain_args("rm", out, pairs, tmp_path / "rm", "max_steps=1", "batch_size=16")
    assert refinery(more) == 0


def test_every_trained_parameter_of_a_reward_model_gets_a_gradient(pretrained):
    """DDP fails at its second step on a trained parameter the loss never used: an untied
    model's lm_head. The score bias only takes rounding noise from Bradley-Terry: it stays 0."""
    config = dataclasses.replace(load_pretrained(pretrained).config.model, tie_embeddings=False)
    model = RewardModel(config)
    torch.nn.init.normal_(model.score_head.weight)
    model(torch.tensor([[0, 10, 11, 6]]), torch.tensor([4])).sum().backward()
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    assert "lm_head.weight" not in trained and "score_head.bias" not in trained
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
