"""MC scoring: metrics from known log-likelihoods, prompts, few-shot selection, models whose
preferences are known."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn

from refinery.mc_data import MCItem
from refinery.tokenizer import load_tokenizer
from training.config import ModelConfig
from training.evaluation.loglik import continuation_logprobs
from training.evaluation.mc import context, fewshot_pool, mc_metrics, requests_for, score_benchmark
from training.pretrained import load_pretrained


def item(i: int, question: str = "q", choices=("a", "b"), answer=0, bench="demo", subject=None):
    return MCItem(bench, f"{bench}:{i}", question, list(choices), answer, subject)


def test_metrics_from_known_loglikelihoods():
    lls = [[-1.0, -2.0], [-3.0, -4.0], [-9.0, -8.0], [-5.0, -5.0]]
    choices = [["aa", "b"], ["a", "bbbbbb"], ["a", "b"], ["a", "b"]]
    answers = [0, 1, 0, 0]
    metrics = mc_metrics(lls, choices, answers)
    # acc picks 0, 0, 1, 0 (a tie goes to the first choice): right on items 0 and 3
    assert metrics["n"] == 4 and metrics["acc"] == 0.5
    assert metrics["acc_stderr"] == pytest.approx(math.sqrt(1 / 3 / 4))  # sample var of 1,0,0,1
    # per character: [-0.5, -2], [-3, -0.67], [-9, -8], [-5, -5] -> 0, 1, 1, 0: three right
    assert metrics["acc_norm"] == 0.75
    assert metrics["acc_norm_stderr"] == pytest.approx(math.sqrt(0.25 / 4))
    assert mc_metrics([], [], []) == {
        "n": 0, "acc": None, "acc_stderr": None, "acc_norm": None, "acc_norm_stderr": None
    }  # fmt: skip


def test_prompts_and_fixed_fewshot_examples():
    items = [
        item(i, f"Q{i}?", [f"right{i}", f"wrong{i}"], subject="world_history") for i in range(6)
    ]
    assert context(items[0], [], 0) == (
        "The following are questions (with answers) about world history.\n\nQuestion: Q0?\nAnswer:"
    )
    pool = fewshot_pool(items, 2)
    assert len(pool) == 3 and pool == fewshot_pool(items, 2)  # seeded: the same every run
    for target in items:
        text = context(target, pool, 2)
        examples = [ex for ex in pool if ex is not target][:2]
        expected = "".join(
            f"Question: {ex.question}\nAnswer: {ex.choices[0]}\n\n" for ex in examples
        )
        assert text.endswith(expected + f"Question: {target.question}\nAnswer:")
        assert text.count("Question:") == 3 and f"right{target.id[-1]}" not in text
    other = [item(i, f"Q{i}?", bench="other") for i in range(6)]
    assert [x.id[-1] for x in fewshot_pool(other, 2)] != [x.id[-1] for x in pool]
    assert fewshot_pool(items, 0) == [] and len(fewshot_pool(items[:2], 5)) == 2


def test_a_copy_of_the_item_under_another_id_is_no_example():
    """MMLU-Redux's us_foreign_policy repeats one question (lines 83 and 84): from about 20
    shots on, one copy's prompt showed the other solved."""
    items = [item(i, f"Q{i}?", [f"right{i}", f"wrong{i}"]) for i in range(6)]
    items.append(item(6, "Q2?", ["right2", "wrong2"]))  # items[2] again, another id
    pool = items
    for target in (items[2], items[6]):
        text = context(target, pool, 6)
        assert text.count("Question: Q2?") == 1 and "right2" not in text


class FixedPreferences(nn.Module):
    """A stand-in model whose next-token log-probabilities ignore the context: token t gets
    logit `bias[t]` everywhere, so a continuation's log-likelihood is a sum we can check."""

    def __init__(self, bias: torch.Tensor, seq_len: int = 64):
        super().__init__()
        self.cfg = ModelConfig(vocab_size=len(bias), seq_len=seq_len)
        self.bias = nn.Parameter(bias.clone())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(*tokens.shape, -1)


@pytest.fixture(scope="module")
def tokenizer(text_tokens):
    return load_tokenizer(text_tokens / "tokenizer.json")


def test_loglikelihoods_are_sums_over_the_continuation_tokens(tokenizer):
    bias = torch.randn(tokenizer.get_vocab_size(), generator=torch.Generator().manual_seed(0))
    model = FixedPreferences(bias, seq_len=8)
    logp = bias.log_softmax(-1).double()
    target = item(0, "The cat sees", ["a red ball.", "the old house and a short poem."])
    cuts = Counter()
    requests = requests_for(target, context(target, [], 0), tokenizer, seq_len=8, cuts=cuts)
    assert cuts == {"context": 1, "choice": 1}  # the long choice alone exceeds 8 tokens
    requests_for(target, context(target, [], 0), tokenizer, seq_len=64, cuts=cuts)
    assert cuts == {"context": 1, "choice": 1}
    scores = continuation_logprobs(model, requests, batch_size=1)
    for choice, score, (tokens, n) in zip(target.choices, scores, requests, strict=True):
        ids = tokenizer.encode(" " + choice).ids
        assert n == min(len(ids), 8) and len(tokens) <= 9  # left-truncated to the context
        assert score == pytest.approx(logp[ids[-n:]].sum().item(), rel=1e-5)


def test_a_model_that_prefers_the_right_words_scores_every_item(tokenizer):
    right = ["cat sees red ball", "team builds old house"]
    wrong = ["friend paints green apples", "bird follows blue sky"]
    liked = {t for text in right for t in tokenizer.encode(" " + text).ids}
    assert not liked & {t for text in wrong for t in tokenizer.encode(" " + text).ids}
    bias = torch.zeros(tokenizer.get_vocab_size())
    bias[sorted(liked)] = 5.0
    items = [
        item(0, "What happens?", [wrong[0], right[0]], answer=1),
        item(1, "And then?", [right[1], wrong[1]], answer=0),
        item(2, "Again?", [wrong[1], wrong[0], right[0]], answer=2),
    ]
    for shots in (0, 2, 1000):  # at most the other two items as examples
        metrics = score_benchmark(FixedPreferences(bias), tokenizer, items, shots, batch_size=2)
        assert metrics["n"] == 3 and metrics["acc"] == 1.0 and metrics["acc_norm"] == 1.0
        assert metrics["acc_stderr"] == 0.0 and metrics["shots"] == min(shots, 2)
    uniform = score_benchmark(FixedPreferences(torch.zeros_like(bias)), tokenizer, items)
    n_tokens = [[len(tokenizer.encode(" " + c).ids) for c in it.choices] for it in items]
    fewest = [min(range(len(n)), key=n.__getitem__) for n in n_tokens]  # uniform: fewest wins
    right_picks = sum(f == it.answer for f, it in zip(fewest, items, strict=True))
    assert uniform["acc"] == pytest.approx(right_picks / 3)


def test_the_pretrained_model_prefers_its_training_text(pretrained):
    """30 steps on "<Subject> <verb> <object>." sentences: a grammatical ending from its data
    beats the same words scrambled; a 300-word passage is truncated to the context."""
    loaded = load_pretrained(pretrained)
    tokenizer = loaded.tokenizer()
    endings = ["likes a red ball.", "finds the old house.", "paints green apples."]
    items = [
        item(i, "The cat sees a red ball. My friend", [ending, " ".join(ending.split()[::-1])])
        for i, ending in enumerate(endings)
    ]
    items.append(item(3, "word " * 300 + "The dog", ["sees the blue sky.", "sky blue the sees"]))
    metrics = score_benchmark(loaded.model, tokenizer, items, shots=1, batch_size=3)
    assert metrics["n"] == 4 and metrics["acc"] == 1.0
    # the passage, and every item that has it as its one solved example
    assert metrics["truncated"] >= 1 and metrics["choice_truncated"] == 0
