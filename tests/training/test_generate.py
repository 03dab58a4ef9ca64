"""Generation: the KV cache computes what the full forward computes; sampling filters; stops."""

from __future__ import annotations

import pytest
import torch

from training.config import ModelConfig
from training.generate import GenerationError, filter_logits, generate, sample_next
from training.model import Transformer
from training.pretrained import load_pretrained


@pytest.fixture(scope="module")
def model(pretrained):
    return load_pretrained(pretrained).model


def greedy_reference(model: Transformer, prompt: list[int], steps: int) -> list[int]:
    """Greedy decoding through the training forward, one unpadded sequence at a time."""
    tokens = list(prompt)
    for _ in range(steps):
        with torch.no_grad():
            logits = model(torch.tensor([tokens]))
        tokens.append(int(logits[0, -1].argmax()))
    return tokens[len(prompt) :]


PROMPTS = [[20, 31, 45, 50, 61, 70, 80], [33], [40, 41, 42, 43]]


def random_model(seed: int = 0, **overrides) -> Transformer:
    """Random weights give varied greedy outputs, unlike a briefly trained model that repeats."""
    torch.manual_seed(seed)
    shape = dict(vocab_size=96, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=32)
    return Transformer(ModelConfig(**{**shape, "qk_norm": True, **overrides}))


@pytest.mark.parametrize("kind", ["pretrained", "random"])
def test_cached_greedy_generation_equals_the_uncached_and_the_training_forward(model, kind):
    net = model if kind == "pretrained" else random_model(init_std=0.5)
    cached = generate(net, PROMPTS, 12, temperature=0, stop_ids=())
    uncached = generate(net, PROMPTS, 12, temperature=0, stop_ids=(), use_cache=False)
    assert cached == uncached
    assert cached == [greedy_reference(net, p, 12) for p in PROMPTS]
    assert [len(out) for out in cached] == [12, 12, 12]
    if kind == "random":
        assert len({t for out in cached for t in out}) > 6  # not a degenerate repetition


def test_cached_sampling_draws_what_uncached_sampling_draws():
    net = random_model(init_std=0.5)

    def run(use_cache):
        gen = torch.Generator().manual_seed(7)
        return generate(
            net, PROMPTS, 12, top_k=30, top_p=0.95, stop_ids=(), generator=gen, use_cache=use_cache
        )

    assert run(True) == run(False)


def test_cached_logits_match_the_full_forward_with_left_padding_and_gqa():
    model = random_model(seq_len=16)
    long, short = torch.randint(0, 96, (1, 10)), torch.randint(0, 96, (1, 6))
    pads = torch.tensor([0, 4])
    cache = model.new_cache(pads, 10)
    batch = torch.cat(
        [long[:, :7], torch.cat([torch.zeros(1, 4, dtype=torch.long), short[:, :3]], 1)]
    )
    with torch.no_grad():
        steps = [model.logits(model.hidden(batch, cache))]
        for t in range(3):
            nxt = torch.cat([long[:, 7 + t : 8 + t], short[:, 3 + t : 4 + t]])
            steps.append(model.logits(model.hidden(nxt, cache)))
        incremental = torch.cat(steps, dim=1)
        torch.testing.assert_close(incremental[:1], model(long), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(incremental[1:, 4:], model(short), atol=1e-5, rtol=1e-4)


def test_a_sequence_stops_at_its_stop_token_without_changing_the_others(model):
    free = generate(model, PROMPTS, 10, temperature=0, stop_ids=())
    stop = free[0][3]
    stopped = generate(model, PROMPTS, 10, temperature=0, stop_ids=(stop,))
    for out, reference in zip(stopped, free, strict=True):
        cut = reference.index(stop) + 1 if stop in reference else len(reference)
        assert out == reference[:cut]
    assert stopped[0][-1] == stop and len(stopped[0]) <= 4


class Scripted(Transformer):
    """A model whose next token is always `token`: tests the loop around the model."""

    def __init__(self, cfg: ModelConfig, token: int):
        super().__init__(cfg)
        self.token = token

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*hidden.shape[:-1], self.cfg.vocab_size)
        out[..., self.token] = 1.0
        return out


def test_the_default_stops_are_end_of_turn_and_end_of_text(pretrained):
    tokenizer = load_pretrained(pretrained).tokenizer()
    cfg = ModelConfig(vocab_size=tokenizer.get_vocab_size(), seq_len=16)
    for stop in ("<|end_of_turn|>", "<|end_of_text|>"):
        token = tokenizer.token_to_id(stop)
        assert generate(Scripted(cfg, token), [[20, 21]], 10, temperature=0) == [[token]]
    assert generate(Scripted(cfg, 30), [[20, 21]], 10, temperature=0) == [[30] * 10]


def test_generation_stops_at_the_context_length(model):
    seq_len = model.cfg.seq_len
    near_full = [20] * (seq_len - 3)
    out = generate(model, [near_full, [20]], 10, temperature=0, stop_ids=())
    assert [len(o) for o in out] == [4, 10]  # the model reads seq_len tokens, one more is drawn
    read = torch.tensor([near_full + out[0][:-1]])
    assert read.shape[1] == seq_len and model(read)[0, -1].argmax().item() == out[0][-1]
    assert len(generate(model, [[20] * seq_len], 5, stop_ids=())[0]) == 1
    with pytest.raises(GenerationError, match="more than the model's seq_len"):
        generate(model, [[20] * (seq_len + 1)], 5)
    with pytest.raises(GenerationError, match="prompt 1 is empty"):
        generate(model, [[20], []], 5)
    with pytest.raises(GenerationError, match="top_p"):
        generate(model, [[20]], 5, top_p=0)


def test_sampling_is_deterministic_for_a_seeded_generator(model):
    def run(seed):
        return generate(
            model,
            PROMPTS,
            8,
            temperature=1.0,
            top_k=20,
            top_p=0.9,
            generator=torch.Generator().manual_seed(seed),
            stop_ids=(),
        )

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_top_k_keeps_the_k_largest_logits():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0, 0.0]])
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [[False, True, True, False, False]]
    assert filter_logits(logits, top_k=0).isfinite().all()


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()

    def kept(p):
        return filter_logits(logits, top_p=p).isfinite()[0].tolist()

    assert kept(0.4) == [False, True, False, False]  # the likeliest token alone reaches 0.4
    assert kept(0.75) == [False, True, False, True]  # 0.5 + 0.3
    assert kept(0.85) == [False, True, True, True]  # 0.5 + 0.3 + 0.15
    assert kept(1.0) == [True, True, True, True]
    assert kept(0.01) == [False, True, False, False]  # the top token always survives


def test_sample_next_draws_only_surviving_tokens_and_is_greedy_at_zero_temperature():
    logits = torch.tensor([[0.0, 3.0, 2.9, 1.0]]).repeat(200, 1)
    gen = torch.Generator().manual_seed(0)
    draws = sample_next(logits, temperature=1.0, top_k=2, generator=gen)
    assert set(draws.tolist()) == {1, 2}
    assert sample_next(logits, temperature=0).eq(1).all()
    # a temperature so small that logits / temperature overflows is a near-greedy draw
    assert sample_next(logits, temperature=1e-40, generator=gen).eq(1).all()
    # below float32's smallest number it rounded to 0 in the division: 0 / 0 = nan, a traceback
    for tiny in (1e-46, 5e-324):
        assert sample_next(logits, temperature=tiny, generator=gen).eq(1).all()
    tied = torch.tensor([[5.0, 1.0, 5.0]]).repeat(200, 1)
    assert set(sample_next(tied, temperature=1e-40, generator=gen).tolist()) == {0, 2}


def test_the_rows_padding_the_vocabulary_are_never_drawn():
    """train.py pads the vocabulary to a multiple of 64: those rows decode to nothing."""
    net = random_model(init_std=0.5, tie_embeddings=False)
    with torch.no_grad():
        net.lm_head.weight[80:] *= 50  # padding rows that dominate every distribution
    gen = torch.Generator().manual_seed(0)
    padded = generate(net, PROMPTS, 8, stop_ids=(), generator=gen)
    assert max(t for out in padded for t in out) >= 80  # drawn when the model's rows are all
    for temperature in (1.0, 0.0):
        outs = generate(net, PROMPTS, 8, temperature, stop_ids=(), generator=gen, vocab_size=80)
        assert [len(out) for out in outs] == [8, 8, 8]
        assert max(t for out in outs for t in out) < 80
