"""The tokenizer contract: special tokens, the chat template, training and loading a
`tokenizer.json`.

Shared by the tokenize stage (which trains and applies the tokenizer), `inspect-shards` and
post-training (the chat template). Imports only the `tokenizers` library: no Spark, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from refinery.errors import RefineryError

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"  # appended to every pretraining document
PAD = "<|pad|>"
SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END_OF_TURN = "<|end_of_turn|>"
# Trained first, so they hold ids 0..6 in this order in every Refinery tokenizer.
SPECIAL_TOKENS = (BOS, EOS, PAD, SYSTEM, USER, ASSISTANT, END_OF_TURN)
PAD_ID = SPECIAL_TOKENS.index(PAD)  # special tokens hold ids 0..6 in every Refinery tokenizer
ROLES = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
# How text is cut before BPE merges (no merge crosses a piece): Llama 3's pattern (OpenAI's
# cl100k). Unlike GPT-2's, numbers are cut into groups of at most 3 digits from the left (no
# token learns a frequent long number such as a phone prefix; the groups are a small, shared
# set), contractions match in any case, and runs of newlines are pieces of their own.
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PRETOKENIZERS = ("llama3", "gpt2")  # gpt2: GPT-2's own regex, the default before 2026-12-05


class TokenizerError(RefineryError, ValueError):
    """A tokenizer file that is missing, unreadable or lacks Refinery's special tokens."""


# A run of characters without white space (or of white space) is one piece to the trainer,
# whose time grows with the square of a piece's length: one run of 80,000 "=" took 4 s, 40,000
# random ideographs 12 s. The sample keeps the first MAX_TRAINING_RUN characters of such a run
# (SentencePiece leaves sentences over 4,192 bytes out of its sample); encoding is unchanged.
MAX_TRAINING_RUN = 1000
# White space as the pre-tokenizer's regex has it: Python's \s also takes U+001C-U+001F (the
# file, group, record and unit separators), which it splits as punctuation, so "=\x1c" * n
# was one piece to the trainer and none here.
_SPACE, _NON_SPACE = r"[^\S\x1c-\x1f]", r"[\S\x1c-\x1f]"
# tried at a run's start only: from every character, 999-character runs made 1 MB 1 s
_LONG_RUN = re.compile(
    rf"(?<!{_NON_SPACE}){_NON_SPACE}{{{MAX_TRAINING_RUN + 1},}}"
    rf"|(?<!{_SPACE}){_SPACE}{{{MAX_TRAINING_RUN + 1},}}"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, pretokenizer: str = "llama3"
) -> Tokenizer:
    """Byte-level BPE (GPT-2: Radford et al. 2019) trained on `texts`, text cut into pieces by
    `PRETOKENIZE_PATTERN` first, as Llama 3's tokenizer (`pretokenizer="gpt2"`: GPT-2's
    regex, which keeps numbers whole).

    No normaliser and no prefix space, and all 256 byte symbols in the base vocabulary, so
    every UTF-8 string encodes and decodes back to itself exactly.
    """
    if pretokenizer not in PRETOKENIZERS:
        raise TokenizerError(f"pretokenizer {pretokenizer!r}: one of {list(PRETOKENIZERS)}")
    tokenizer = Tokenizer(models.BPE())
    if pretokenizer == "gpt2":
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tokenizer.decoder = decoders.ByteLevel()
    texts = (_LONG_RUN.sub(lambda run: run[0][:MAX_TRAINING_RUN], text) for text in texts)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load `path`, check its special tokens, and make document text unable to produce them.

    With `encode_special_tokens` a document that contains the literal string "<|end_of_text|>"
    encodes it as ordinary bytes, so only the stage itself ever inserts a special id.
    """
    path = Path(path)
    if path.is_dir():  # a tokens or tokenizer folder: the file it holds
        hint = f" (give {path / 'tokenizer.json'})" if (path / "tokenizer.json").is_file() else ""
        raise TokenizerError(f"{path}: is a folder, not a tokenizer file{hint}")
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TokenizerError(
            f"{path}: not a tokenizers JSON file (byte {err.start} is not UTF-8)"
        ) from None
    return tokenizer_from_json(text, str(path))


# Every ASCII character, runs and kinds of white space, and 2-, 3- and 4-byte UTF-8.
ROUND_TRIP_PROBE = (
    "".join(map(chr, range(128))) + "  a\t\tb\r\n\n c\u00a0d caf\u00e9 \u4e2d\u6587 \U0001f600"
)


def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte-level symbol of each byte UTF-8 text can hold (all but 0xC0, 0xC1 and
    0xF5-0xFF)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    moved = [b for b in range(256) if b not in kept]
    symbols = {b: chr(b) for b in kept} | {b: chr(256 + n) for n, b in enumerate(moved)}
    return {b: c for b, c in sorted(symbols.items()) if b not in (0xC0, 0xC1) and b < 0xF5}


_BYTE_SYMBOLS = _byte_symbols()


def tokenizer_from_json(text: str, where: str = "tokenizer") -> Tokenizer:
    """`load_tokenizer` for the file's content (Spark ships the text, not the path)."""
    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
        raise TokenizerError(f"{where}: not a tokenizers JSON file: {err}") from None
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        raise TokenizerError(f"{where}: lacks the special tokens {missing}")
    # Generation stops, and post-training pads, at these ids (training.generate, posttrain):
    # a tokenizer with the tokens elsewhere would stop at whatever text token holds them.
    moved = {t: tokenizer.token_to_id(t) for i, t in enumerate(SPECIAL_TOKENS)}
    moved = {t: i for t, i in moved.items() if i != SPECIAL_TOKENS.index(t)}
    if moved:
        raise TokenizerError(
            f"{where}: the special tokens must have ids 0-{len(SPECIAL_TOKENS) - 1} in the order "
            f"{list(SPECIAL_TOKENS)}; it has {moved} (train it with them first, as "
            "`refinery train-tokenizer` does)"
        )
    # encode_special_tokens protects only tokens marked special: one that is not would let
    # document text encode to it.
    added = tokenizer.get_added_tokens_decoder()
    unlisted = [t for i, t in enumerate(SPECIAL_TOKENS) if i not in added]
    if unlisted:  # in the vocabulary alone: decode keeps them, skip_special_tokens or not
        raise TokenizerError(
            f'{where}: the tokens {unlisted} are not in its "added_tokens" (list each there '
            'with its id and "special": true)'
        )
    unmarked = [t for i, t in enumerate(SPECIAL_TOKENS) if not added[i].special]
    if unmarked:
        raise TokenizerError(
            f'{where}: the tokens {unmarked} are not marked "special": true, so document text '
            "could encode to them"
        )
    # A normaliser rewrites text before it is encoded ("ﬁ" -> "fi" under NFKC), so shards
    # would no longer decode to their documents.
    if tokenizer.normalizer is not None:
        raise TokenizerError(
            f"{where}: has a normalizer ({type(tokenizer.normalizer).__name__}); Refinery "
            "tokenizers have none, so every text decodes back to itself"
        )
    # A post-processor adding tokens (BOS, as a Hugging Face file saved with add_bos_token
    # has) would add them to every encode but the tokenize stage's: chats, eval, generation.
    added = tokenizer.num_special_tokens_to_add(False)
    if added:
        raise TokenizerError(
            f"{where}: its post-processor adds {added} special token(s) to every text; Refinery "
            "adds its special tokens itself (save the tokenizer without add_bos_token)"
        )
    # Another model (WordLevel with [UNK], whitespace dropped) loses text: the bytes the
    # manifest and bits per byte count would no longer be what the shards hold.
    if not isinstance(tokenizer.decoder, decoders.ByteLevel):
        raise TokenizerError(
            f"{where}: is not a byte-level BPE tokenizer (decoder "
            f"{type(tokenizer.decoder).__name__}); Refinery's decode every text back to itself"
        )
    # BPE-dropout saved with the model skips merges at random on every encode: shards that
    # differ run to run, and longer.
    if isinstance(tokenizer.model, models.BPE) and tokenizer.model.dropout:
        raise TokenizerError(
            f"{where}: its BPE model has dropout {tokenizer.model.dropout:g}, which skips merges "
            'at random on every encode (set "dropout": null in its "model")'
        )
    # A byte-level BPE trained without all 256 byte symbols (BpeTrainer without
    # initial_alphabet) drops the bytes it never saw: Arabic or emoji would vanish from shards.
    absent = [b for b, c in _BYTE_SYMBOLS.items() if tokenizer.token_to_id(c) is None]
    if absent:
        raise TokenizerError(
            f"{where}: its vocabulary lacks the byte-level symbols of {len(absent)} bytes UTF-8 "
            "text can hold, so text with those bytes would be dropped (train it with "
            "initial_alphabet=ByteLevel.alphabet(), as `refinery train-tokenizer` does)"
        )
    tokenizer.encode_special_tokens = True
    # A byte-level decoder after a lossy model or pre-tokenizer (Whitespace drops the spaces,
    # WordLevel writes [UNK]) still loses text, and bits per byte would count bytes the model
    # never had to predict.
    if tokenizer.decode(tokenizer.encode(ROUND_TRIP_PROBE).ids) != ROUND_TRIP_PROBE:
        raise TokenizerError(
            f"{where}: does not decode text back to itself (its model or pre-tokenizer drops "
            "white space or maps text to an unknown token); Refinery's decode every text back"
        )
    return tokenizer


def token_byte_lengths(tokenizer: Tokenizer) -> list[int]:
    """The UTF-8 bytes each id of a loaded (byte-level) tokenizer stands for, 0 for special
    tokens, for bits per byte over any run of ids: byte-level BPE writes each byte as one
    character of its alphabet, so a token's bytes are its string's length."""
    lengths = [0] * tokenizer.get_vocab_size()
    for token, i in tokenizer.get_vocab(with_added_tokens=False).items():
        lengths[i] = len(token)
    for i, added in tokenizer.get_added_tokens_decoder().items():
        lengths[i] = 0 if added.special else len(added.content.encode("utf-8"))
    return lengths


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Special token -> id."""
    return {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}


def encode_chat(
    tokenizer: Tokenizer, messages: list[dict[str, str]], generation_prompt: bool = False
) -> list[int]:
    """The chat template: BOS, then per message `<|role|>` content `<|end_of_turn|>`.

    `generation_prompt` ends with `<|assistant|>`, where the model is to continue. Content is
    encoded as text (never as special tokens), so a user cannot forge a turn boundary.
    """
    ids = special_ids(tokenizer)
    out = [ids[BOS]]
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise TokenizerError(f"message {i}: role {role!r} is not one of {sorted(ROLES)}")
        out.append(ids[ROLES[role]])
        out += tokenizer.encode(message.get("content", "")).ids
        out.append(ids[END_OF_TURN])
    if generation_prompt:
        out.append(ids[ASSISTANT])
    return out
