"""PPO: GAE by hand, the losses, and a toy reward that PPO learns to collect with bounded KL."""

from __future__ import annotations

import json
import math

import pytest
import torch
from posttrain_helpers import posttrain_args, separable_pairs, write_jsonl
from safetensors.torch import load_file
from train_helpers import REPO, read_metrics

from refinery.cli import main as refinery
from refinery.tokenizer import END_OF_TURN, EOS, SPECIAL_TOKENS
from training.checkpoint import resolve_checkpoint
from training.config import ModelConfig
from training.generate import DEFAULT_STOP_IDS
from training.ppo import (
    PAD_ID,
    PolicyWithValue,
    PPOHyper,
    answer_stats,
    gae,
    layout,
    masked_whiten,
    policy_loss,
    rollout,
    rollout_figures,
    token_rewards,
    toy_run,
    value_loss,
)
from training.pretrained import load_pretrained
from training.train import StopRequest


def test_gae_matches_a_hand_computation():
    rewards = torch.tensor([[1.0, 0.0, 2.0], [0.5, 3.0, 9.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [2.0, 1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2 ends after two tokens
    gamma, lam = 1.0, 0.95
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    # row 1: deltas 1 + 1 - 0.5 = 1.5, 0 + 1.5 - 1 = 0.5, 2 + 0 - 1.5 = 0.5
    a2 = 0.5
    a1 = 0.5 + 0.95 * a2
    a0 = 1.5 + 0.95 * a1
    # row 2: deltas 0.5 + 1 - 2 = -0.5, 3 + 0 - 1 = 2 (the masked 9 and 7 are never seen)
    b1 = 2.0
    b0 = -0.5 + 0.95 * b1
    expected = torch.tensor([[a0, a1, a2], [b0, b1, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, (expected + values) * mask)


def test_gae_discounts_by_gamma():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    gamma, lam = 0.9, 0.95
    advantages, _ = gae(rewards, values, torch.ones(1, 3), gamma, lam)
    # deltas: 1 + 0.9 * 1 - 0.5 = 1.4, 0 + 0.9 * 1.5 - 1 = 0.35, 2 + 0 - 1.5 = 0.5
    a2 = 0.5
    a1 = 0.35 + 0.9 * 0.95 * a2
    a0 = 1.4 + 0.9 * 0.95 * a1
    torch.testing.assert_close(advantages, torch.tensor([[a0, a1, a2]]))


def test_gae_with_lambda_one_gives_monte_carlo_returns():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.3, -1.0, 4.0]])
    _, returns = gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[6.0, 5.0, 3.0]]))


def test_token_rewards_put_the_score_on_the_last_answer_token_and_penalise_kl():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-2.0, -2.0, -1.0], [-1.5, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = token_rewards(torch.tensor([10.0, 20.0]), logprobs, ref, mask, kl_coef=0.1)
    expected = torch.tensor([[-0.1, 0.0, 10.2], [-0.05, 20.0, 0.0]])
    torch.testing.assert_close(rewards, expected)


def test_policy_loss_clips_the_ratio_and_counts_clipped_tokens():
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    advantages = torch.tensor([[1.0, -1.0, 2.0]])
    loss, fraction = policy_loss(new, old, advantages, torch.ones(1, 3), clip=0.2)
    # token 1: min(1.5, 1.2) * 1 -> 1.2; token 2: ratio 0.5, A < 0 -> min(-0.5, -0.8) = -0.8;
    # token 3: ratio 1.1 inside the clip -> 2.2. The loss is minus their mean.
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 2.2) / 3)
    assert fraction.item() == pytest.approx(2 / 3)


def test_value_loss_takes_the_worse_of_clipped_and_unclipped():
    old = torch.tensor([[0.0, 0.0]])
    values = torch.tensor([[1.0, -0.1]])
    returns = torch.tensor([[1.0, 1.0]])
    loss = value_loss(values, old, returns, torch.ones(1, 2), clip=0.2)
    # token 1: unclipped error 0, clipped (0.2 - 1)^2 = 0.64; token 2: (−0.1 − 1)^2 = 1.21
    assert loss.item() == pytest.approx(0.5 * (0.64 + 1.21) / 2)


def test_masked_whiten_ignores_masked_entries():
    """The std has Bessel's correction, as TRL's masked_var: [1, 3] has variance 2."""
    x = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    half = 2**-0.5
    torch.testing.assert_close(
        masked_whiten(x, mask), torch.tensor([[-half, half, 0.0]]), atol=1e-4, rtol=0
    )
    kept_mean = torch.tensor([[2.0 - half, 2.0 + half, 0.0]])
    torch.testing.assert_close(
        masked_whiten(x, mask, shift_mean=False), kept_mean, atol=1e-4, rtol=0
    )


def test_padded_slots_cannot_make_the_policy_loss_nan():
    """A padded slot's log-probs are whatever the forward gave: exp of a large gap is inf,
    and inf × 0 would be nan."""
    new, old = torch.tensor([[0.0, 1000.0]]), torch.zeros(1, 2)
    advantages = torch.tensor([[1.0, -1.0]])  # -A·r = +inf in the padded slot
    loss, fraction = policy_loss(new, old, advantages, torch.tensor([[1.0, 0.0]]), 0.2)
    assert loss.item() == -1.0 and fraction.item() == 0.0


def test_layout_and_answer_stats_read_the_answer_tokens_of_each_row():
    prompts, answers = [[11, 12, 13], [14]], [[15, 16], [17, 18, 19]]
    tokens, positions, mask = layout(prompts, answers, torch.device("cpu"))
    assert tokens.tolist() == [[11, 12, 13, 15, 16], [14, 17, 18, 19, PAD_ID]]
    assert positions.tolist() == [[2, 3, 0], [0, 1, 2]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    torch.manual_seed(0)
    shape = ModelConfig(vocab_size=32, d_model=16, n_layers=1, n_heads=2, seq_len=16)
    policy = PolicyWithValue(shape)
    logprobs, values, entropy = answer_stats(policy, policy.value_head, tokens, positions, 1.0)
    full = policy(tokens).log_softmax(dim=-1)  # the training forward
    assert logprobs[0, 1].item() == pytest.approx(full[0, 3, 16].item(), abs=1e-5)
    assert logprobs[1, 0].item() == pytest.approx(full[1, 0, 17].item(), abs=1e-5)
    assert values.abs().max() == 0  # the zero-initialised value head
    assert entropy.shape == (2, 3)


def test_an_answer_cut_without_a_stop_token_pays_the_missing_eos_penalty():
    torch.manual_seed(0)
    shape = ModelConfig(vocab_size=32, d_model=16, n_layers=1, n_heads=2, seq_len=16)
    policy = PolicyWithValue(shape)
    with torch.no_grad():  # stop tokens (EOS, end of turn) about as likely as any other
        policy.embed.weight[: len(DEFAULT_STOP_IDS) + 5] *= 0
    hp = PPOHyper(kl_coef=0.0, whiten_rewards=False, lam=1.0, missing_eos_penalty=2.5)
    hp.max_new_tokens = 3
    prompts = [[10 + i % 7, 11] for i in range(32)]
    batch = rollout(
        policy, policy, lambda p, r: torch.zeros(len(r)), prompts, hp, torch.Generator()
    )
    assert 0 < batch.stopped.sum() < len(prompts)
    # only an answer that ends its turn counts as stopped: one ending the document does not
    last = batch.tokens[torch.arange(len(prompts)), 1 + batch.mask.sum(1).long()]
    assert torch.equal(batch.stopped, last == SPECIAL_TOKENS.index(END_OF_TURN))
    assert (last == SPECIAL_TOKENS.index(EOS)).any()
    # zero values, γ = λ = 1: the return at an answer's first token is its shaped score
    expected = torch.where(batch.stopped, 0.0, -2.5)
    torch.testing.assert_close(batch.returns[:, 0], expected)
    assert rollout_figures(batch)["stopped"] == batch.stopped.float().mean().item()


TARGET = 9


def count_target(prompts, responses):
    """The toy reward: the share of answer tokens that are TARGET."""
    return torch.tensor([sum(t == TARGET for t in r) / len(r) for r in responses])


def train_toy(kl_coef: float, steps: int = 30) -> list[dict]:
    """PPO on a random tiny model rewarded for emitting TARGET; the figures of each step."""
    return toy_run(count_target, kl_coef, steps)


def mean(history: list[dict], key: str) -> float:
    return sum(h[key] for h in history) / len(history)


@pytest.fixture(scope="module")
def default_run():
    return train_toy(kl_coef=0.05)


def test_a_mini_batch_that_does_not_divide_the_batch_is_refused():
    from refinery.config import ConfigError
    from training.ppo import PPOConfig, PPOHyper

    with pytest.raises(ConfigError, match=r"ppo.mini_batch \(3\) must divide batch_size \(4\)"):
        PPOConfig(batch_size=4, ppo=PPOHyper(mini_batch=3))
    with pytest.raises(ConfigError, match=r"fewer rollouts than one mini-batch"):
        PPOConfig(batch_size=4, ppo=PPOHyper(mini_batch=8))
    with pytest.raises(ConfigError, match=r"ppo.temperature must be >= 1e-06 \(the log-probs"):
        PPOHyper(temperature=1e-40)  # logits / T: inf in float32, then NaN


def test_ppo_learns_a_toy_reward_with_bounded_kl(default_run):
    assert mean(default_run[:5], "reward") < 0.1  # 1/32 of the tokens by chance
    assert mean(default_run[-5:], "reward") > 0.3
    assert default_run[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the policy is the reference
    # a batch mean of the k1 estimator (log π − log π_ref) may dip just below 0
    assert all(-0.5 < h["kl"] < 8 for h in default_run), [h["kl"] for h in default_run]
    for h in default_run:
        for key in ("loss", "entropy", "value_loss", "clip_fraction"):
            assert math.isfinite(h[key]), key


@pytest.mark.slow  # a second toy run
def test_a_larger_kl_coefficient_keeps_the_policy_closer_to_the_reference(default_run):
    tight = train_toy(kl_coef=1.0)
    assert mean(tight[-10:], "kl") < 0.5 * mean(default_run[-10:], "kl")


@pytest.fixture(scope="module")
def reward_model(pretrained, tmp_path_factory):
    """A reward model briefly trained from the tiny pretrained checkpoint."""
    root = tmp_path_factory.mktemp("ppo-rm")
    data = write_jsonl(root / "pairs.jsonl", separable_pairs(32))
    out = root / "rm"
    assert refinery(posttrain_args("rm", pretrained, data, out, "max_steps=4", "heldout=0")) == 0
    return out


def ppo_args(pretrained, reward, out, *extra):
    prompts = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
    args = posttrain_args("ppo", pretrained, prompts, out, f"reward={reward}", "batch_size=4")
    return [*args, "ppo.mini_batch=2", "ppo.ppo_epochs=2", "ppo.max_new_tokens=8", *extra]


@pytest.mark.slow  # trains a reward model, then four short PPO runs
def test_refinery_ppo_end_to_end_logs_saves_and_resumes(pretrained, reward_model, tmp_path, capsys):
    out = tmp_path / "ppo"
    # answers as long as the context: a setting to change, not prompts to blame
    assert refinery(ppo_args(pretrained, reward_model, out, "ppo.max_new_tokens=64")) == 2
    assert "ppo.max_new_tokens=64 leaves 0 of the policy's 64 positions" in capsys.readouterr().err
    assert refinery(ppo_args(pretrained, reward_model, out, "max_steps=2", "ckpt_every=1")) == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in ("loss", "reward", "kl", "entropy", "value_loss", "clip_fraction"):
            assert math.isfinite(row[key]), key
    saved = resolve_checkpoint(out)
    assert saved.name == "ckpt-2"
    assert "value_head.weight" in load_file(saved / "model.safetensors")
    policy = load_pretrained(out)  # a plain language model again, tokenizer included
    assert policy.tokenizer().token_to_id("<|end_of_turn|>") is not None
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["method"] == "ppo"
    assert meta["prompts"] + sum(meta["skipped"].values()) == 40  # the demo file's records

    again = ["--resume", "max_steps=3"]
    # the prompts after the checkpoint would differ (max_new_tokens: which prompts fit)
    for other in ("seed=5", "batch_size=16", "ppo.max_new_tokens=16"):
        assert refinery([*ppo_args(pretrained, reward_model, out), *again, other]) == 2
    assert "ppo.max_new_tokens: 8 -> 16" in capsys.readouterr().err
    assert refinery([*ppo_args(pretrained, reward_model, out), *again]) == 0
    resumed = read_metrics(out)
    assert [r["step"] for r in resumed] == [1, 2, 3]
    assert resolve_checkpoint(out).name == "ckpt-3"
    straight = tmp_path / "straight"
    assert refinery(ppo_args(pretrained, reward_model, straight, "max_steps=3")) == 0
    for key in ("loss", "reward", "kl"):  # the resumed run continues exactly
        assert read_metrics(straight)[2][key] == pytest.approx(resumed[2][key], rel=1e-5), key


def test_refinery_ppo_refuses_a_reward_checkpoint_without_a_score_head(
    pretrained, tmp_path, capsys
):
    assert refinery(ppo_args(pretrained, pretrained, tmp_path / "ppo", "max_steps=1")) == 2
    assert "no score_head" in capsys.readouterr().err


@pytest.mark.slow
def test_a_preempted_ppo_run_saves_after_the_step(pretrained, reward_model, tmp_path, monkeypatch):
    out = tmp_path / "ppo"
    with monkeypatch.context() as patch:
        patch.setattr(StopRequest, "agreed", lambda self, env=None: True)
        assert refinery(ppo_args(pretrained, reward_model, out, "max_steps=3")) == 0
    assert [r["step"] for r in read_metrics(out)] == [1]
    assert json.loads((out / "ckpt-1" / "meta.json").read_text())["preemption"] is True
    assert refinery([*ppo_args(pretrained, reward_model, out, "max_steps=3"), "--resume"]) == 0
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]
