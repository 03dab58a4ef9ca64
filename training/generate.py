"""Sampling from a Transformer: temperature, top-k, top-p (nucleus) and a KV cache.

`generate` runs a batch of prompts together, left-padded: the prompts go through the model once
(the prefill), then each step feeds one new token per sequence and reads the cached keys and
values of everything before it (`training.model.KVCache`). Used by `refinery generate`,
`refinery chat` and PPO's rollouts.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import torch

from refinery.cli import non_negative_int
from refinery.errors import RefineryError
from refinery.tokenizer import END_OF_TURN, EOS, SPECIAL_TOKENS, encode_chat
from refinery.utf8 import is_unicode
from training import checkpoint as ckpt
from training.model import Transformer
from training.pretrained import load_pretrained
from training.train import autocast, setup_distributed

# Every Refinery tokenizer holds the special tokens at ids 0..6 in SPECIAL_TOKENS order
# (refinery/tokenizer.py), so the end of a turn and the end of a document have fixed ids.
DEFAULT_STOP_IDS = (SPECIAL_TOKENS.index(EOS), SPECIAL_TOKENS.index(END_OF_TURN))


class GenerationError(RefineryError, ValueError):
    """Prompts or sampling settings that cannot be generated from."""


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top `top_k` (0: no limit) and outside the smallest set
    of most likely tokens whose probability reaches `top_p` (nucleus sampling, Holtzman et al.
    2020). The most likely token always survives. `logits` is (B, V)."""
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach top_p
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of `logits` (B, V): the argmax when temperature is 0, else a draw from
    softmax(logits / temperature) after the top-k / top-p filters."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float()
    # Shifted so the largest logit is 0: a tiny temperature then sends the others to -inf
    # (a near-greedy draw), where dividing first overflowed to inf - inf = nan. Below float32's
    # smallest normal number it would round to 0 (0 / 0 = nan): that number does the same.
    temperature = max(temperature, torch.finfo(torch.float32).tiny)
    logits = filter_logits((logits - logits.amax(dim=-1, keepdim=True)) / temperature, top_k, top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def check_settings(temperature: float, top_k: int, top_p: float, max_new_tokens: int) -> None:
    if not (math.isfinite(temperature) and temperature >= 0):
        raise GenerationError(f"temperature must be a number >= 0 (0: greedy), got {temperature}")
    if top_k < 0:
        raise GenerationError(f"top_k must be >= 0 (0: no limit), got {top_k}")
    if not 0 < top_p <= 1:
        raise GenerationError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 0:
        raise GenerationError(f"max_new_tokens must be >= 0, got {max_new_tokens}")


@torch.no_grad()
def generate(
    model: Transformer,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop_ids: tuple[int, ...] = DEFAULT_STOP_IDS,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    vocab_size: int = 0,
) -> list[list[int]]:
    """The tokens sampled after each prompt (the prompt itself not included).

    A sequence ends after it emits a token of `stop_ids` (kept as its last token, so the caller
    sees why it ended), after `max_new_tokens`, or once the model has read `seq_len` tokens:
    prompt + output then hold seq_len + 1 tokens, the last one sampled but never fed back, and
    the context has no room for another (a prompt longer than seq_len is an error).
    `use_cache=False` recomputes every position at each step; it gives the same tokens, slower,
    and is what the cache is tested against (a mixture-of-experts model in eval mode drops no
    tokens, so this holds for it too).
    `vocab_size` is the tokenizer's (0: the model's): the rows past it pad the model's
    vocabulary to a multiple of 64 (training/train.py), decode to nothing, and are never drawn.
    """
    check_settings(temperature, top_k, top_p, max_new_tokens)
    if not prompts:
        return []
    seq_len = model.cfg.seq_len
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise GenerationError(f"prompt {i} is empty: generation needs at least one token")
        if len(prompt) > seq_len:
            raise GenerationError(
                f"prompt {i} has {len(prompt)} tokens, more than the model's seq_len {seq_len}"
            )
    device = model.embed.weight.device
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    padded = max(len(p) for p in prompts)
    pads = padded - lengths
    # the token sampled last is never fed back, so a prompt of seq_len tokens still gets one
    budgets = [min(max_new_tokens, seq_len + 1 - len(p)) for p in prompts]
    steps = max(budgets, default=0)
    if steps == 0:
        return [[] for _ in prompts]
    tokens = torch.zeros(len(prompts), padded + steps, dtype=torch.long, device=device)
    for i, prompt in enumerate(prompts):
        tokens[i, padded - len(prompt) : padded] = torch.tensor(prompt, device=device)
    stops = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=device)
    budget = torch.tensor(budgets, device=device)
    done = budget == 0
    emitted = torch.zeros_like(budget)  # tokens kept per sequence

    cache = model.new_cache(pads, padded + steps) if use_cache else None
    for step in range(steps):
        end = padded + step  # tokens[:, :end] are known
        if cache is None:  # a fresh cache over the whole prefix: the same masks and positions
            start, context = 0, model.new_cache(pads, end)
        else:  # the prompts once, then only the token sampled last
            start, context = (0 if step == 0 else end - 1), cache
        with autocast(device):
            logits = model.logits(model.hidden(tokens[:, start:end], context)[:, -1]).float()
        if vocab_size:
            logits[:, vocab_size:] = float("-inf")
        new = sample_next(logits, temperature, top_k, top_p, generator)
        tokens[:, end] = new
        emitted += (~done).long()
        done |= torch.isin(new, stops) | (budget <= step + 1)
        if bool(done.all()):
            break
    rows = tokens[:, padded:].tolist()
    return [row[:n] for row, n in zip(rows, emitted.tolist(), strict=True)]


# Meta's Llama 2 chat example (temperature 0.6, top-p 0.9), as its generation_config.json
# has them; exported with the model (training/export_hf.py), so HF's generate samples alike
SAMPLING_DEFAULTS = {"max_new_tokens": 128, "temperature": 0.6, "top_k": 0, "top_p": 0.9}


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `refinery generate` and `refinery chat`."""
    parser.add_argument("--ckpt", required=True, help="checkpoint folder or run folder")
    d = SAMPLING_DEFAULTS
    parser.add_argument(
        "--max-new-tokens", type=int, default=d["max_new_tokens"], help="(default %(default)s)"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=d["temperature"],
        help="0: greedy (default %(default)s)",
    )
    parser.add_argument(
        "--top-k", type=int, default=d["top_k"], help="0: no limit (default %(default)s)"
    )
    parser.add_argument(
        "--top-p", type=float, default=d["top_p"], help="nucleus share (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="sampling seed (default 0)"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


@dataclass
class Sampler:
    """A checkpoint ready to answer: model, tokenizer and the sampling settings of the flags."""

    model: Transformer
    tokenizer: object  # tokenizers.Tokenizer
    args: argparse.Namespace
    generator: torch.Generator
    chat_template: str | None  # what post-training taught it (meta.json); None: a base model

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Sampler:
        check_settings(args.temperature, args.top_k, args.top_p, args.max_new_tokens)
        device = setup_distributed(args.device).device
        loaded = load_pretrained(args.ckpt, device)
        tokenizer = loaded.tokenizer()
        generator = torch.Generator(device).manual_seed(args.seed)
        template = ckpt.load_meta(loaded.path).get("chat_template")
        return cls(loaded.model.eval(), tokenizer, args, generator, template)

    def complete(self, prompt: list[int]) -> str:
        """The text sampled after `prompt`, without the stop token that ended it."""
        settings = self.args
        (out,) = generate(
            self.model,
            [prompt],
            settings.max_new_tokens,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            generator=self.generator,
            vocab_size=self.tokenizer.get_vocab_size(),
        )
        if out and out[-1] in DEFAULT_STOP_IDS:
            out = out[:-1]
        return self.tokenizer.decode(out, skip_special_tokens=True)


def replacing_stdout() -> None:
    """Write what stdout's encoding lacks as '?': an answer in Spanish to a PYTHONIOENCODING=
    ascii stdout ended the command in a UnicodeEncodeError after sampling it."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """`refinery generate --ckpt CKPT --prompt TEXT [--chat]`: print one completion."""
    parser = argparse.ArgumentParser(prog="refinery generate", description=main.__doc__)
    parser.add_argument(
        "--prompt", required=True, help="text to continue ('' samples a document from its start)"
    )
    parser.add_argument(
        "--chat", action="store_true", help="wrap the prompt as a user turn (chat template)"
    )
    parser.add_argument("--system", help="system message (with --chat)")
    add_sampling_args(parser)
    args = parser.parse_args(argv)
    if args.system and not args.chat:
        raise GenerationError("--system applies to a chat prompt: add --chat")
    for flag, text in (("--prompt", args.prompt), ("--system", args.system or "")):
        if not is_unicode(text):
            raise GenerationError(f"{flag} is not UTF-8 text: {text!r}")
    sampler = Sampler.from_args(args)
    if sampler.chat_template and not args.chat:
        print(
            f"note: {args.ckpt} was post-trained on the chat template "
            f"({sampler.chat_template}); --chat asks it as a user turn",
            file=sys.stderr,
        )
    if args.chat:
        messages = [{"role": "system", "content": args.system}] if args.system else []
        messages.append({"role": "user", "content": args.prompt})
        prompt = encode_chat(sampler.tokenizer, messages, generation_prompt=True)
    else:  # after EOS, as every pretraining document follows one (and eval conditions on it)
        prompt = [SPECIAL_TOKENS.index(EOS), *sampler.tokenizer.encode(args.prompt).ids]
    replacing_stdout()
    print(sampler.complete(prompt))
    return 0
