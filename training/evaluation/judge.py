"""`refinery judge`: pairwise LLM-as-judge win rate of answers A over answers B.

Every pair is judged twice, as (A, B) and as (B, A), and the two verdicts are averaged, so a
judge that favours the first (or second) position gives both sides the same push (AlpacaEval
and MT-Bench swap positions for the same reason). The preferences then give the raw and the
length-controlled win rate (training/evaluation/winrate.py).

Judges:
- `prompt`: a checkpoint asked, through the chat template, which response is better; the
  preference is softmax over its next-token logits for "A" and "B" (the probability, not a
  sampled verdict, so ties and uncertainty are kept).
- `reward`: a reward model's scores r, preference sigma(r_first - r_second) (Bradley-Terry).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refinery.cli import non_negative_int
from refinery.errors import RefineryError
from refinery.results import check_results_path, write_results
from refinery.tokenizer import PAD, encode_chat, load_tokenizer
from training.evaluation.answers import (
    Answer,
    Pair,
    pair_answers,
    read_answers,
    read_instructions,
    write_answers,
)
from training.evaluation.loglik import resolve_device
from training.evaluation.respond import Sampling, answer_instructions
from training.evaluation.winrate import win_rates

# A terse pairwise prompt after AlpacaEval's and MT-Bench's judge templates (instruction, two
# labelled responses, a one-letter verdict): terse, because a small judge's context (64 tokens
# in the tiny preset) must also hold the instruction and both answers.
JUDGE_PROMPT = "Instruction: {instruction}\nA: {first}\nB: {second}\nWhich is better, A or B?"
VERDICTS = ("A", "B")

# (instruction, first response, second response) triples -> P(first is better) for each
Judge = Callable[[Sequence[tuple[str, str, str]]], np.ndarray]


class JudgeError(RefineryError, ValueError):
    """A judge that cannot judge: context too short for the prompt, verdicts not one token."""


def share_budget(lengths: Sequence[int], budget: int) -> list[int]:
    """Token limits for pieces of `lengths` summing to at most `budget`: short pieces keep
    everything, the long ones share what is left equally (water filling)."""
    limits = [0] * len(lengths)
    remaining = budget
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for k, i in enumerate(order):
        limits[i] = min(lengths[i], remaining // (len(order) - k))
        remaining -= limits[i]
    return limits


def judging_prompt(tokenizer, instruction: str, first: str, second: str) -> list[int]:
    content = JUDGE_PROMPT.format(instruction=instruction, first=first, second=second)
    return encode_chat(tokenizer, [{"role": "user", "content": content}], generation_prompt=True)


def verdict_ids(tokenizer) -> list[int]:
    """The token of each verdict, whose logits are compared: each must be one token."""
    ids = [tokenizer.encode(verdict).ids for verdict in VERDICTS]
    for verdict, tokens in zip(VERDICTS, ids, strict=True):
        if len(tokens) != 1:
            raise JudgeError(f"the verdict {verdict!r} is {len(tokens)} tokens, not one")
    return [tokens[0] for tokens in ids]


def prompt_room(tokenizer, seq_len: int) -> int:
    """Tokens a context of `seq_len` leaves the instruction and the responses (at least 3)."""
    room = seq_len - len(judging_prompt(tokenizer, "", "", ""))
    if room < 3:
        raise JudgeError(
            f"the judge's context of {seq_len} tokens cannot hold the judging prompt "
            f"({seq_len - room} tokens without the instruction and responses)"
        )
    return room


class PromptJudge:
    """A causal LM prompted with JUDGE_PROMPT; pieces that do not fit its context are cut at
    their end (instruction and both responses sharing the room), and counted in `truncated`;
    those whose two responses then read the same, though the answers differ, in `identical`
    (answers sharing a long start: their verdicts judge nothing, and the swap makes them 0.5)."""

    def __init__(self, model, tokenizer, device: torch.device, batch_size: int = 16):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.max_len = model.cfg.seq_len
        self.room = prompt_room(tokenizer, self.max_len)
        self.pad_id = tokenizer.token_to_id(PAD)
        self.verdict_ids = verdict_ids(tokenizer)
        self.truncated = 0
        self.identical = 0

    def prompt(self, instruction: str, first: str, second: str) -> list[int]:
        """The prompt's token ids, cut to fit the judge's context."""
        ids = judging_prompt(self.tokenizer, instruction, first, second)
        if len(ids) <= self.max_len:
            return ids
        self.truncated += 1
        pieces = [self.tokenizer.encode(t).ids for t in (instruction, first, second)]
        limits = share_budget([len(p) for p in pieces], self.room)
        for _ in range(8):  # decoded pieces can re-encode a little longer in context
            texts = [self.tokenizer.decode(p[:k]) for p, k in zip(pieces, limits, strict=True)]
            ids = judging_prompt(self.tokenizer, *texts)
            excess = len(ids) - self.max_len
            if excess <= 0:
                if texts[1] == texts[2] and first != second:
                    self.identical += 1
                return ids
            longest = max(range(3), key=lambda i: limits[i])
            limits[longest] = max(0, limits[longest] - excess)
        raise JudgeError(f"could not cut a prompt to the judge's {self.max_len} tokens")

    @torch.inference_mode()
    def __call__(self, triples: Sequence[tuple[str, str, str]]) -> np.ndarray:
        out = []
        for start in range(0, len(triples), self.batch_size):
            prompts = [self.prompt(*t) for t in triples[start : start + self.batch_size]]
            width = max(map(len, prompts))
            batch = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
            for row, ids in enumerate(prompts):  # right padding: causal attention ignores it
                batch[row, : len(ids)] = torch.tensor(ids)
            hidden = self.model.hidden(batch.to(self.device))
            last = torch.tensor([len(p) - 1 for p in prompts], device=self.device)
            final = hidden[torch.arange(len(prompts), device=self.device), last]
            verdicts = self.model.logits(final).float()[:, self.verdict_ids]
            out.append(torch.sigmoid(verdicts[:, 0] - verdicts[:, 1]).cpu().numpy())
        return np.concatenate(out).astype(float) if out else np.zeros(0)


def swapped_preferences(judge: Judge, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """P(A better than B) per pair, the mean of the verdicts with A shown first and with B
    shown first; also every raw P(first) (both orders), which measures the position bias."""
    a_first = judge([(p.instruction, p.output_a, p.output_b) for p in pairs])
    b_first = judge([(p.instruction, p.output_b, p.output_a) for p in pairs])
    return 0.5 * (a_first + (1.0 - b_first)), np.concatenate([a_first, b_first])


def judge_results(
    pairs: Sequence[Pair], preference: np.ndarray, first: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """The results JSON's "judge" object: win rates of A over B (x100) and answer lengths."""
    len_a = np.array([len(p.output_a) for p in pairs], float)
    len_b = np.array([len(p.output_b) for p in pairs], float)
    rates = win_rates(preference, len_a, len_b, seed=seed)
    return {
        "n": rates.n,
        "win_rate": rates.win_rate,
        "win_rate_stderr": rates.win_rate_stderr,
        "lc_win_rate": rates.lc_win_rate,
        "lc_win_rate_stderr": rates.lc_win_rate_stderr,
        "avg_len_a": float(len_a.mean()),
        "avg_len_b": float(len_b.mean()),
        "a_longer_share": float(np.mean(len_a > len_b) + 0.5 * np.mean(len_a == len_b)),
        "length_coefficient": rates.glm.phi,
        "length_difference_sd": rates.glm.length_sd,  # 0: the length feature was dropped
        "first_position_preference": float(first.mean()),
    }


class RewardJudge:
    """A reward model scoring each (instruction, response) as the chat it was trained on;
    P(first better) = sigma(r_first - r_second). Each response is scored alone, so positions
    cannot matter; the swap still runs, and `first_position_preference` shows it is 0.5. A
    chat longer than the model's context is scored on its end alone, and counted in
    `truncated`: two answers with the same long tail would score alike."""

    def __init__(self, model, tokenizer, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.truncated = 0

    def scores(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        chats = [
            encode_chat(
                self.tokenizer,
                [{"role": "user", "content": i}, {"role": "assistant", "content": r}],
            )
            for i, r in pairs
        ]
        self.truncated += sum(len(chat) > self.model.cfg.seq_len for chat in chats)
        return self.model.score(chats, self.batch_size)

    def __call__(self, triples: Sequence[tuple[str, str, str]]) -> np.ndarray:
        first = self.scores([(i, f) for i, f, _ in triples])
        second = self.scores([(i, s) for i, _, s in triples])
        return torch.sigmoid(first - second).numpy().astype(float)


def prompt_judge(path: str, device: torch.device, batch_size: int) -> PromptJudge:
    from training.pretrained import load_pretrained

    pretrained = load_pretrained(path, device)
    return PromptJudge(pretrained.model, pretrained.tokenizer(), device, batch_size)


def reward_judge(path: str, device: torch.device, batch_size: int) -> RewardJudge:
    from training.checkpoint import CheckpointError, resolve_checkpoint
    from training.reward import load_reward_model

    model = load_reward_model(path, device)
    tokenizer = resolve_checkpoint(path) / "tokenizer.json"
    if not tokenizer.is_file():
        raise CheckpointError(f"{tokenizer.parent} has no tokenizer.json to encode answers with")
    return RewardJudge(model, load_tokenizer(tokenizer), batch_size)


JUDGES = {"prompt": prompt_judge, "reward": reward_judge}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="refinery judge", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--a", required=True, metavar="ANSWERS_A",
        help="JSON/JSONL answers {instruction, output, generator}, or a checkpoint to answer "
        "--instructions",
    )  # fmt: skip
    parser.add_argument("--b", required=True, metavar="ANSWERS_B", help="the baseline, as --a")
    parser.add_argument("--judge", required=True, metavar="CKPT", help="the judge's checkpoint")
    parser.add_argument("--kind", choices=sorted(JUDGES), default="prompt")
    parser.add_argument(
        "--instructions", metavar="FILE",
        help="JSON/JSONL records with `instruction`, answered by a checkpoint given as --a/--b",
    )  # fmt: skip
    parser.add_argument("--out", metavar="FILE", help="write the results JSON here")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per forward")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of sampling and bootstrap"
    )
    sampling = Sampling()
    parser.add_argument("--max-new-tokens", type=int, default=sampling.max_new_tokens)
    parser.add_argument("--temperature", type=float, default=sampling.temperature)
    parser.add_argument("--top-p", type=float, default=sampling.top_p)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def side_answers(args: argparse.Namespace, side: str, device: torch.device) -> list[Answer]:
    """The answers of `--a` or `--b`: read from a file, or sampled from a checkpoint folder
    (then also written beside `--out` as `<out stem>.<side>.json`)."""
    spec = getattr(args, side)
    if not Path(spec).is_dir():
        return read_answers(spec)
    if not args.instructions:
        raise JudgeError(f"--{side} {spec} is a checkpoint: give --instructions FILE to answer")
    sampling = Sampling(
        args.max_new_tokens, args.temperature, args.top_p, args.seed, args.batch_size
    )
    answers = answer_instructions(spec, read_instructions(args.instructions), device, sampling)
    if args.out:
        out = Path(args.out)
        write_answers(out.with_name(f"{out.stem}.{side}.json"), answers)
    return answers


def check_judge(path: str, kind: str) -> None:
    """The judge's checkpoint is of `kind` and has its config and a tokenizer: said before
    answers are sampled, which may take long, from its small files and the weights' names
    alone (it is loaded after them)."""
    from training.checkpoint import CheckpointError, resolve_checkpoint, weight_names
    from training.pretrained import is_reward_model, load_config

    source = resolve_checkpoint(path)
    config = load_config(source)
    scores = is_reward_model(dict.fromkeys(weight_names(source)))
    if scores != (kind == "reward"):
        what = "a reward model" if scores else "a language model, not a reward model"
        other = "prompt" if scores else "reward"
        raise JudgeError(f"{source} is {what}: --kind {kind} needs the other (--kind {other}?)")
    if not (source / "tokenizer.json").is_file():
        raise CheckpointError(f"{source} has no tokenizer.json to encode answers with")
    if kind == "prompt":  # what PromptJudge refuses, from the same small files
        tokenizer = load_tokenizer(source / "tokenizer.json")
        verdict_ids(tokenizer)
        prompt_room(tokenizer, config.model.seq_len)


def check_instructions(args: argparse.Namespace) -> None:
    """A side read from a file must answer the very `--instructions` a checkpoint side is
    given: said before that side's answers are sampled, not after."""
    if not args.instructions:
        return
    asked = set(read_instructions(args.instructions))
    for side in ("a", "b"):
        spec = getattr(args, side)
        if Path(spec).is_dir():
            continue
        answered = {answer.instruction for answer in read_answers(spec)}
        if answered != asked:
            raise JudgeError(
                f"--{side} {spec} answers {len(answered - asked)} instructions that "
                f"--instructions {args.instructions} lacks and lacks {len(asked - answered)} "
                "of its instructions: both sides must answer the same ones"
            )


def check_outputs(args: argparse.Namespace) -> None:
    """`--out`, and the answers it writes beside itself for a checkpoint side, must not
    replace an input file."""
    out = check_results_path(args.out, reads=[args.judge, args.a, args.b])
    sampled = [side for side in ("a", "b") if Path(getattr(args, side)).is_dir()]
    outputs = {out.resolve(), *(out.with_name(f"{out.stem}.{s}.json").resolve() for s in sampled)}
    for flag in ("a", "b", "instructions"):
        value = getattr(args, flag)
        if value and Path(value).resolve() in outputs:
            raise JudgeError(f"--out {out} would overwrite --{flag} {value}: name another file")


def _rate(results: dict[str, Any], key: str) -> str:
    stderr = results[f"{key}_stderr"]
    return f"{results[key]:.1f}" + ("" if stderr is None else f" ± {stderr:.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.instructions and all(Path(getattr(args, s)).is_file() for s in ("a", "b")):
        raise JudgeError(
            f"--instructions {args.instructions} is answered only by a checkpoint given as --a "
            "or --b, and both are answer files: leave it out"
        )
    if args.out:
        check_outputs(args)
    check_instructions(args)
    check_judge(args.judge, args.kind)
    device = resolve_device(args.device)
    pairs = pair_answers(
        side_answers(args, "a", device), side_answers(args, "b", device), f"{args.a} vs {args.b}"
    )
    judge = JUDGES[args.kind](args.judge, device, args.batch_size)  # after: one model at a time
    preference, first = swapped_preferences(judge, pairs)
    results = judge_results(pairs, preference, first, args.seed)
    results.update(kind=args.kind, checkpoint=args.judge, a=args.a, b=args.b)
    # each pair is judged in both orders: 2n prompts, or 2n chats of each side's answer
    if isinstance(judge, PromptJudge):
        key, pieces, total = "truncated_prompts", "judging prompts", 2 * len(pairs)
    else:
        key, pieces, total = "truncated_answers", "scored chats", 4 * len(pairs)
    results[key] = judge.truncated
    if judge.truncated:
        print(
            f"judge: {judge.truncated} of the {total} {pieces} did not fit the judge's context "
            f"of {judge.model.cfg.seq_len} tokens and were cut: its verdicts saw only part of them",
            file=sys.stderr,
        )
    if isinstance(judge, PromptJudge):
        results["identical_after_cut"] = judge.identical
        if judge.identical:
            print(
                f"judge: in {judge.identical} of them the two responses read the same once cut "
                "(answers that share their start): those verdicts judge nothing, and count 50",
                file=sys.stderr,
            )
    print(
        f"judge ({args.kind}): A wins {_rate(results, 'win_rate')} %, length-controlled "
        f"{_rate(results, 'lc_win_rate')} % over {results['n']} instructions (avg length A "
        f"{results['avg_len_a']:.0f}, B {results['avg_len_b']:.0f} chars)"
    )
    if results["n"] > 1 and results["length_difference_sd"] == 0:
        print(
            "judge: every pair's answers differ in length by the same amount, so length and "
            "side cannot be told apart: the length-controlled rate is the raw one",
            file=sys.stderr,
        )
    elif results["n"] > 1 and results["a_longer_share"] in (0.0, 1.0):
        longer = "A" if results["a_longer_share"] else "B"
        print(
            f"judge: {longer}'s answer is the longer in every pair, so the length-controlled "
            "rate extrapolates the fit to equal lengths it never saw: read it with care",
            file=sys.stderr,
        )
    if args.out:
        write_results(args.out, {"judge": results})
    return 0
