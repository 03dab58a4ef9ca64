"""Post-training loop and SFT: masks token by token, global-batch normalisation, CLI, resume."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
from posttrain_helpers import posttrain_args, write_jsonl
from train_helpers import REPO, count_recomputed_blocks, read_metrics

from refinery.cli import main as refinery
from refinery.tokenizer import ASSISTANT, BOS, END_OF_TURN, SYSTEM, USER, special_ids
from training.checkpoint import CheckpointError, list_checkpoints, resolve_checkpoint
from training.posttrain import (
    CHAT_TEMPLATE,
    PostTrainConfig,
    batch_indices,
    data_warnings,
    describe_data,
    encode_supervised,
    fit_pair,
    split_heldout,
    train_step,
)
from training.pretrained import load_pretrained
from training.sft import SFTObjective, fit_conversation
from training.train import Distributed, StopRequest

CONVERSATION = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "The cat sees a red ball."},
    {"role": "assistant", "content": "A dog likes green apples."},
    {"role": "user", "content": "My friend paints."},
    {"role": "assistant", "content": "The teacher answers."},
]


@pytest.fixture(scope="module")
def loaded(pretrained):
    return load_pretrained(pretrained)


def expected_tokens_and_mask(tokenizer, conversation, supervise="all"):
    """The template spelled out by hand: prompt parts 0, assistant content and end-of-turn 1."""
    ids = special_ids(tokenizer)
    role_token = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
    last = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
    tokens, mask = [ids[BOS]], [0]
    for i, message in enumerate(conversation):
        learn = message["role"] == "assistant" and (supervise == "all" or i == last)
        content = tokenizer.encode(message["content"]).ids
        tokens += [ids[role_token[message["role"]]], *content, ids[END_OF_TURN]]
        mask += [0] + [int(learn)] * (len(content) + 1)
    return tokens, mask


@pytest.mark.parametrize("supervise", ["all", "last"])
def test_mask_covers_exactly_the_assistant_tokens(loaded, supervise):
    tokenizer = loaded.tokenizer()
    tokens, mask = encode_supervised(tokenizer, CONVERSATION, supervise)
    assert (tokens, mask) == expected_tokens_and_mask(tokenizer, CONVERSATION, supervise)


@pytest.mark.parametrize("supervise", ["all", "last"])
def test_an_assistant_turn_of_weight_0_is_context_not_learnt(loaded, supervise):
    """OpenAI's fine-tuning format: the "weight": 0 answer was trained on."""
    tokenizer = loaded.tokenizer()
    weighted = [*CONVERSATION[:-1], {**CONVERSATION[-1], "weight": 0}]
    tokens, mask = encode_supervised(tokenizer, weighted, supervise)
    first_answer = expected_tokens_and_mask(tokenizer, CONVERSATION[:3])[1]
    assert tokens == expected_tokens_and_mask(tokenizer, CONVERSATION)[0]
    assert mask == first_answer + [0] * (len(tokens) - len(first_answer))


def test_the_mask_of_a_long_conversation_encodes_each_message_a_bounded_number_of_times(loaded):
    """Each assistant turn re-encoded the conversation up to it, twice: quadratic in turns
    (a 200-turn conversation took 20 s before its first step)."""
    tokenizer = loaded.tokenizer()
    conversation = CONVERSATION[:1] + CONVERSATION[1:] * 50
    calls = Counter()

    class Counting:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def encode(self, text):
            calls[text] += 1
            return tokenizer.encode(text)

    tokens, mask = encode_supervised(Counting(), conversation)
    assert (tokens, mask) == expected_tokens_and_mask(tokenizer, conversation)
    assert sum(calls.values()) <= 2 * len(conversation)


def test_examples_whose_last_answer_the_context_cuts_away_are_counted(loaded, tmp_path):
    """A preference file's chosen answer comes last: 21% of HH's were cut away whole, and
    those examples trained on the earlier turns (the same in chosen and rejected) unsaid."""
    tokenizer = loaded.tokenizer()
    long_answer = " ".join(["The cat sees a red ball."] * 40)
    records = [
        {
            "messages": [
                *CONVERSATION[1:3],
                {"role": "user", "content": "More?"},
                {"role": "assistant", "content": long_answer},
            ]
        },
        {"messages": CONVERSATION[1:3]},
    ]
    path = write_jsonl(tmp_path / "chats.jsonl", records)
    objective = SFTObjective(PostTrainConfig())
    first_turn = len(encode_supervised(tokenizer, CONVERSATION[1:3])[0])
    examples = objective.examples(path, tokenizer, first_turn + 4, Counter())
    assert len(examples) == 2 and objective.truncated == 1 and objective.last_answer_cut == 1
    line = describe_data(objective, path, examples, [], Counter())
    assert "1 truncated to the context (1 of them lost their last answer whole" in line


def test_no_prompt_token_contributes_to_the_sft_loss(loaded):
    """The gradient of the loss reaches the logits of exactly the supervised targets."""
    tokenizer = loaded.tokenizer()
    objective = SFTObjective(PostTrainConfig())
    tokens, mask = encode_supervised(tokenizer, CONVERSATION)
    batch = objective.collate([fit_conversation(tokens, mask, 64)], torch.device("cpu"))
    logits = loaded.model(batch.tokens[:, :-1]).detach().requires_grad_()
    loss, _ = objective.loss(lambda _: logits, batch)
    loss.backward()
    touched = logits.grad.abs().sum(dim=-1)[0]  # per input position t, predicting token t + 1
    for t, target_mask in enumerate(mask[1:]):
        assert (touched[t] > 0) == bool(target_mask), (t, tokenizer.id_to_token(tokens[t + 1]))
    targets = torch.tensor(tokens[1:])
    nll = torch.nn.functional.cross_entropy(logits[0], targets, reduction="none")
    assert loss.item() == pytest.approx((nll * torch.tensor(mask[1:])).sum().item(), rel=1e-5)


def test_loss_is_normalised_over_the_global_batch(loaded):
    """Same loss and gradients whatever the micro-batch split: the normaliser is the number of
    supervised tokens of the whole batch, not a mean of per-micro-batch means."""
    tokenizer = loaded.tokenizer()
    conversations = [
        CONVERSATION,
        CONVERSATION[1:3],
        [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "A bird."}],
        CONVERSATION[3:],
    ]
    batch = [fit_conversation(*encode_supervised(tokenizer, c), 64) for c in conversations]
    env = Distributed(rank=0, local_rank=0, world=1, device=torch.device("cpu"))
    results = []
    for micro in (1, 2, 4):
        objective = SFTObjective(PostTrainConfig(micro_batch=micro))
        loaded.model.zero_grad()
        figures = train_step(objective, loaded.model, loaded.model, batch, env)
        grads = [p.grad.clone() for p in loaded.model.parameters()]
        results.append((figures, grads))
    loaded.model.zero_grad()
    for figures, grads in results[1:]:
        assert figures["loss"] == pytest.approx(results[0][0]["loss"], rel=1e-5)
        for mine, ref in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6)
    supervised = sum(sum(e.mask[1:]) for e in batch)
    targets = sum(len(e.tokens) - 1 for e in batch)
    assert results[0][0]["supervised_tokens"] == supervised
    assert results[0][0]["supervised_fraction"] == pytest.approx(supervised / targets)


def test_batches_are_a_pure_function_of_the_step():
    first_epoch = [i for step in range(5) for i in batch_indices(10, 2, step, seed=1)]
    assert sorted(first_epoch) == list(range(10))
    assert batch_indices(10, 4, 7, seed=1) == batch_indices(10, 4, 7, seed=1)
    assert batch_indices(10, 4, 7, seed=1) != batch_indices(10, 4, 7, seed=2)
    assert len(batch_indices(3, 8, 0, seed=0)) == 8  # a batch larger than the data wraps


def test_heldout_split_is_seeded_and_disjoint():
    train, held = split_heldout(list(range(20)), 0.25, seed=3)
    assert len(held) == 5 and sorted(train + held) == list(range(20))
    assert split_heldout(list(range(20)), 0.25, seed=3) == (train, held)
    assert split_heldout([1, 2], 0.1, seed=0)[1] and split_heldout([1, 2], 0.0, 0)[1] == []


def test_truncation_keeps_answers_whole():
    # SFT keeps the start; None when no supervised target is left
    assert fit_conversation([1, 2, 3, 4], [0, 0, 1, 1], 3).tokens == [1, 2, 3]
    assert fit_conversation([1, 2, 3, 4], [0, 0, 0, 1], 3) is None
    # pairs keep the end (the answers), cut by the longer side, and drop pairs whose longer
    # answer does not fit with the token before it
    short, long = ([1, 2, 3, 4], [0, 0, 0, 1]), ([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1])
    chosen, rejected = fit_pair([short, long], 5)
    assert (chosen.tokens, rejected.tokens) == ([2, 3, 4], [2, 3, 4, 5, 6])  # one prompt: 2, 3
    assert rejected.mask == [0, 0, 1, 1, 1]
    assert fit_pair([long, short], 3) is None  # 3 answer tokens and the one before: 4
    assert [side.tokens for side in fit_pair([short, short], 3)] == [[2, 3, 4]] * 2


def test_sft_command_end_to_end_and_resume(pretrained, tmp_path, capsys):
    data = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
    out = tmp_path / "sft"
    args = posttrain_args("sft", pretrained, data, out, "max_steps=6", "ckpt_every=3")
    assert refinery([*args, "keep_last=0", "eval_every=3"]) == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 7))
    for row in rows:
        assert math.isfinite(row["loss"]) and 0 < row["supervised_fraction"] < 1
    assert "val_loss" in rows[2] and "val_loss" in rows[5] and "val_loss" not in rows[3]
    assert rows[-1]["loss"] < rows[0]["loss"]
    newest = resolve_checkpoint(out)
    meta = json.loads((newest / "meta.json").read_text())
    assert meta["method"] == "sft" and meta["chat_template"] == CHAT_TEMPLATE
    assert meta["examples"]["train"] + meta["examples"]["heldout"] > 30
    tuned = load_pretrained(out)
    assert tuned.tokenizer().token_to_id(END_OF_TURN) is not None
    assert not torch.equal(tuned.model.embed.weight, load_pretrained(pretrained).model.embed.weight)

    (out / "ckpt-6").rename(tmp_path / "moved")
    capsys.readouterr()
    assert refinery([*args, "keep_last=0", "eval_every=3", "--resume"]) == 0
    assert f"resuming from {out / 'ckpt-3'}: step 3" in capsys.readouterr().err
    assert [r["loss"] for r in read_metrics(out)] == [r["loss"] for r in rows]
    assert [step for step, _ in list_checkpoints(out)] == [3, 6]
    fresh = tmp_path / "fresh"
    resumed = posttrain_args("sft", pretrained, data, fresh, "max_steps=1")
    assert refinery([*resumed, "--resume"]) == 0
    assert f"--resume: no checkpoint in {fresh} yet, starting from scratch" in (
        capsys.readouterr().err
    )


DATA = {"sft": "demo_sft.jsonl", "dpo": "demo_preferences.jsonl"}


@pytest.mark.parametrize("command", list(DATA))
def test_activation_checkpointing_trains_the_same_run(pretrained, tmp_path, monkeypatch, command):
    recomputed = count_recomputed_blocks(monkeypatch)
    data = REPO / "conf" / "posttrain" / DATA[command]
    runs = {}
    for recompute in (False, True):
        out = tmp_path / str(recompute)
        args = posttrain_args(command, pretrained, data, out, "max_steps=3")
        assert refinery([*args, f"activation_checkpointing={recompute}"]) == 0
        runs[recompute] = read_metrics(out)
        assert bool(recomputed) == recompute  # the blocks did go through torch's checkpoint
    for row, reference in zip(runs[True], runs[False], strict=True):
        assert row["loss"] == pytest.approx(reference["loss"], rel=1e-6), row["step"]


def test_sft_refuses_to_overwrite_a_run_and_names_bad_data(pretrained, tmp_path, capsys):
    out = tmp_path / "sft"
    data = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
    assert refinery(posttrain_args("sft", pretrained, data, out, "max_steps=1")) == 0
    assert refinery(posttrain_args("sft", pretrained, data, out, "max_steps=1")) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "?"}])
    assert refinery(posttrain_args("sft", pretrained, bad, tmp_path / "x", "max_steps=1")) == 2
    assert "bad.jsonl line 1: fits no chat/preference layout" in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text("[]\n")
    assert refinery(posttrain_args("sft", pretrained, empty, tmp_path / "e", "max_steps=1")) == 2
    assert "empty.json: no records in the file" in capsys.readouterr().err
    args = posttrain_args("sft", pretrained, data, tmp_path / "y", "batch_size=5")
    assert refinery(args) == 2
    assert "batch_size 5 must be a multiple" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        load_pretrained(tmp_path / "x")


@pytest.mark.parametrize("name", ["sft", "rm", "dpo"])
def test_default_configs_train_on_the_demo_sets(name):
    from refinery.config import load_config, resolve_path

    cfg = load_config(PostTrainConfig, REPO / "conf" / "posttrain" / f"{name}.yaml")
    assert resolve_path(cfg.data).is_file() and cfg.max_steps > 0
    assert cfg.dpo.beta == 0.1


def test_a_run_on_far_less_than_its_file_says_so():
    skipped = Counter({"answer longer than the context": 204, "tie": 1})
    (most, small) = data_warnings(1, 1, skipped, batch_size=16, room=64)
    assert most == (
        "205 of 207 records skipped, 204 of them for 'answer longer than the context' "
        "(at most 64 tokens fit; a model with a longer seq_len keeps more)"
    )
    assert small == "1 train examples, fewer than batch_size=16: every step repeats them"
    assert data_warnings(20, 2, Counter(tie=5), batch_size=16, room=64) == []


def test_a_preempted_sft_saves_after_the_step_and_resumes_exactly(
    pretrained, tmp_path, monkeypatch, capsys
):
    """SIGTERM or a first Ctrl-C left no checkpoint: a preempted job lost all its steps."""
    data = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
    straight = tmp_path / "straight"
    assert refinery(posttrain_args("sft", pretrained, data, straight, "max_steps=3")) == 0
    out = tmp_path / "sft"
    args = posttrain_args("sft", pretrained, data, out, "max_steps=3")
    with monkeypatch.context() as patch:  # the signal arrived during step 1
        patch.setattr(StopRequest, "agreed", lambda self, env=None: True)
        assert refinery(args) == 0
    assert "after step 1, checkpoint saved; --resume continues" in capsys.readouterr().err
    assert json.loads((out / "ckpt-1" / "meta.json").read_text())["preemption"] is True
    assert refinery([*args, "--resume"]) == 0
    assert [r["loss"] for r in read_metrics(out)] == [r["loss"] for r in read_metrics(straight)]
    assert [step for step, _ in list_checkpoints(out)] == [3]  # the preemption one is gone
