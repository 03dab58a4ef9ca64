"""Multiple-choice accuracy by log-likelihood, the lm-evaluation-harness way.

Each choice is scored as a continuation of the prompt, "Question: ...\\nAnswer:" + " " + choice
(the harness's cloze format, as in its PIQA and MMLU-continuation tasks), after an optional
subject description and K solved examples separated by blank lines. `acc` picks the choice with
the highest summed log-likelihood; `acc_norm` divides it by the choice's length in characters
first, so long answers are not penalised for having more tokens (the harness's `acc_norm`).
Standard errors are the sample standard deviation over items / sqrt(n), as the harness reports.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from tokenizers import Tokenizer

from refinery.mc_data import BenchmarkError, MCItem
from refinery.tokenizer import EOS
from training.evaluation.loglik import continuation_logprobs
from training.model import Transformer

FEWSHOT_SEED = 1234  # lm-evaluation-harness's default --fewshot_random_seed
FEWSHOT_DELIMITER = "\n\n"  # the harness's fewshot_delimiter
TARGET_DELIMITER = " "  # the harness's target_delimiter, between "Answer:" and the choice


def describe(item: MCItem) -> str:
    """The harness's MMLU description line, for items that carry a subject."""
    if item.subject is None:
        return ""
    subject = item.subject.replace("_", " ")
    return f"The following are questions (with answers) about {subject}.{FEWSHOT_DELIMITER}"


def prompt(item: MCItem) -> str:
    return f"Question: {item.question}\nAnswer:"


def fewshot_pool(items: Sequence[MCItem], shots: int, seed: int = FEWSHOT_SEED) -> list[MCItem]:
    """shots + 1 items drawn once per benchmark with a seed of its own: every item gets the
    first `shots` of them that are not itself, so the examples are fixed across runs."""
    if shots <= 0:
        return []
    rng = random.Random(f"{seed}:{items[0].benchmark}" if items else seed)
    return rng.sample(list(items), min(shots + 1, len(items)))


def context(item: MCItem, pool: Sequence[MCItem], shots: int) -> str:
    """The item's prompt after up to `shots` solved examples of the pool: never the item, nor
    a copy of it under another id (MMLU-Redux repeats a few questions; lm-eval-harness drops
    examples equal to the item too), which would show its answer."""
    asked = (item.question, item.choices)
    examples = [ex for ex in pool if ex.id != item.id and (ex.question, ex.choices) != asked]
    examples = examples[:shots]
    solved = [f"{prompt(ex)}{TARGET_DELIMITER}{ex.choices[ex.answer]}" for ex in examples]
    return describe(item) + FEWSHOT_DELIMITER.join([*solved, prompt(item)])


def requests_for(
    item: MCItem, ctx: str, tokenizer: Tokenizer, seq_len: int, cuts: Counter | None = None
) -> list[tuple[list[int], int]]:
    """One (tokens, n) request per choice, tokenised the harness's way: encode context and
    choice joined, and split where the context's own encoding ends, so the choice's tokens are
    the ones the model would read in running text. Left-truncated to the model's context as
    the harness does (the oldest few-shot text goes first; the continuation is kept); `cuts`
    counts the item under "context" when its context lost tokens, under "choice" when a
    choice did too (then only the choice's end is scored)."""
    prefix = tokenizer.token_to_id(EOS)  # documents follow EOS in pretraining
    n_ctx = len(tokenizer.encode(ctx).ids)
    joined = tokenizer.encode_batch([ctx + TARGET_DELIMITER + choice for choice in item.choices])
    out, cut_context, cut_choice = [], False, False
    for choice, encoding in zip(item.choices, joined, strict=True):
        ctx_ids, cont_ids = encoding.ids[:n_ctx], encoding.ids[n_ctx:]
        if not cont_ids:
            raise BenchmarkError(f"{item.id}: choice {choice!r} encodes to no tokens")
        full = [prefix, *ctx_ids, *cont_ids]
        tokens = full[-(seq_len + 1) :]
        out.append((tokens, min(len(cont_ids), len(tokens) - 1)))
        cut_context = cut_context or len(full) > len(tokens)
        cut_choice = cut_choice or len(cont_ids) > len(tokens) - 1
    if cuts is not None:
        cuts.update(context=int(cut_context), choice=int(cut_choice))
    return out


def stderr(values: Sequence[float]) -> float | None:
    """Sample standard deviation / sqrt(n) (the harness's `mean_stderr`); None below 2 items."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def first_argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def mc_metrics(
    loglikelihoods: Sequence[Sequence[float]],
    choices: Sequence[Sequence[str]],
    answers: Sequence[int],
) -> dict[str, float | int | None]:
    """{n, acc, acc_stderr, acc_norm, acc_norm_stderr} from per-choice log-likelihoods."""
    correct, correct_norm = [], []
    for lls, options, answer in zip(loglikelihoods, choices, answers, strict=True):
        per_char = [ll / max(len(option), 1) for ll, option in zip(lls, options, strict=True)]
        correct.append(float(first_argmax(lls) == answer))
        correct_norm.append(float(first_argmax(per_char) == answer))
    n = len(correct)
    return {
        "n": n,
        "acc": sum(correct) / n if n else None,
        "acc_stderr": stderr(correct),
        "acc_norm": sum(correct_norm) / n if n else None,
        "acc_norm_stderr": stderr(correct_norm),
    }


def score_benchmark(
    model: Transformer,
    tokenizer: Tokenizer,
    items: Sequence[MCItem],
    shots: int = 0,
    batch_size: int = 8,
    seed: int = FEWSHOT_SEED,
) -> dict[str, float | int | None]:
    """Metrics of one benchmark's items, every choice of every item in one batched pass, with
    the items cut to the model's context: `truncated` (context), `choice_truncated`."""
    pool = fewshot_pool(items, shots, seed)
    requests, sizes, cuts = [], [], Counter()
    for item in items:
        ctx = context(item, pool, shots)
        item_requests = requests_for(item, ctx, tokenizer, model.cfg.seq_len, cuts)
        requests += item_requests
        sizes.append(len(item_requests))
    scores = continuation_logprobs(model, requests, batch_size)
    loglikelihoods, start = [], 0
    for size in sizes:
        loglikelihoods.append(scores[start : start + size])
        start += size
    metrics = mc_metrics(
        loglikelihoods, [item.choices for item in items], [item.answer for item in items]
    )
    # what guessing scores: a model below it has learnt nothing the benchmark measures
    metrics["chance"] = sum(1 / len(item.choices) for item in items) / len(items)
    metrics["shots"] = min(shots, len(items) - 1)  # the examples an item gets: not itself
    metrics.update(truncated=cuts["context"], choice_truncated=cuts["choice"])
    return metrics
