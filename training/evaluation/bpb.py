"""Perplexity and bits-per-byte of a model on held-out documents.

Bits-per-byte = total nats / (ln 2 * UTF-8 bytes): unlike perplexity it does not depend on the
tokenizer, so models with different vocabularies compare (The Pile, Gao et al. 2020). A document
longer than the model's context is scored with a sliding window: each window re-reads
seq_len - stride tokens of context and scores only the tokens no earlier window scored (the
Hugging Face "perplexity of fixed-length models" recipe). Each document is conditioned on the
end-of-text token, as in pretraining where documents follow one another separated by it (and as
lm-evaluation-harness's rolling log-likelihood starts from the prefix token).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer

from refinery.errors import RefineryError, unreadable_file
from refinery.jsonl import json_objects
from refinery.parquet_parts import parquet_parts
from refinery.tokenizer import EOS
from refinery.utf8 import read_utf8, row_name, undecodable_row
from training.evaluation.loglik import continuation_logprobs
from training.model import Transformer


class DocumentsError(RefineryError, ValueError):
    """A held-out documents file that cannot be read."""


def read_documents(path: str | Path) -> list[str]:
    """Documents of a file: a .txt file is one document (WikiText is scored whole), JSONL has
    one per line in its `text` field, Parquet one per row of its `text` column; or of a
    folder of Parquet parts (a curation stage's output), in name order. A file with no text
    at all is refused here, before any model is loaded."""
    path = Path(path)
    if path.is_dir():
        parts = parquet_parts(path)
        if not parts:
            raise DocumentsError(f"{path}: a folder without Parquet parts")
        texts = [text for part in parts for text in _texts(part)]
    else:
        texts = _texts(path)
    if not any(texts):
        raise DocumentsError(f"{path}: no text to score ({len(texts)} empty documents)")
    return texts


def _texts(path: Path) -> list[str]:
    if not path.is_file():
        raise DocumentsError(f"{path}: {unreadable_file(path)}")
    if path.suffix == ".txt":
        return [read_utf8(path, DocumentsError)]
    if path.suffix == ".jsonl":
        return _jsonl_texts(path)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except pa.ArrowException as err:
            raise DocumentsError(f"{path}: not a readable Parquet file: {err}") from None
        if "text" not in table.column_names:
            raise DocumentsError(f"{path}: no 'text' column (columns: {table.column_names})")
        kind = table.schema.field("text").type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise DocumentsError(f"{path}: its 'text' column is {kind}, not string")
        try:
            return [text or "" for text in table.column("text").to_pylist()]
        except UnicodeDecodeError as err:  # a writer that does not check its strings
            row = undecodable_row(table.column("text"))
            ids = table.column("id") if "id" in table.column_names else None
            raise DocumentsError(
                f"{path}: {row_name(ids, row)}: its text is not UTF-8 ({err.reason})"
            ) from None
    raise DocumentsError(f"{path}: expected a .txt, .jsonl or .parquet file")


def _jsonl_texts(path: Path) -> list[str]:
    texts = []
    for number, row in json_objects(read_utf8(path, DocumentsError), path, DocumentsError):
        if not isinstance(row.get("text"), str):
            raise DocumentsError(f"{path}: line {number}: no string 'text' field")
        texts.append(row["text"])
    return texts


def windows(tokens: list[int], seq_len: int, stride: int) -> list[tuple[list[int], int]]:
    """(tokens, n scored) requests covering every token of `tokens` exactly once.

    tokens[0] is the conditioning token and is never scored. A window holds up to seq_len + 1
    tokens; consecutive windows start `stride` apart.
    """
    n_targets = len(tokens) - 1
    out: list[tuple[list[int], int]] = []
    scored_until = 0  # targets 1..scored_until are done
    for begin in range(0, max(n_targets, 1), stride):
        end = min(begin + seq_len, n_targets)
        if end > scored_until:
            out.append((tokens[begin : end + 1], end - scored_until))
            scored_until = end
        if end == n_targets:
            break
    return out


def bits_per_byte(
    model: Transformer,
    tokenizer: Tokenizer,
    texts: Iterable[str],
    batch_size: int = 8,
    device: str | torch.device | None = None,
    stride: int | None = None,
) -> dict[str, float]:
    """{bpb, nats, tokens, bytes, perplexity} of `texts`; perplexity is per token.

    Runs where the model is, or moves it to `device` when one is given. `stride` defaults to
    half the context, so every token after the first window sees at least seq_len / 2 tokens
    of context.
    """
    if device is not None:
        model.to(device)
    seq_len = model.cfg.seq_len
    stride = stride or max(seq_len // 2, 1)
    if not 1 <= stride <= seq_len:
        raise ValueError(f"stride {stride} must be in 1..seq_len ({seq_len})")
    prefix = tokenizer.token_to_id(EOS)
    requests: list[tuple[list[int], int]] = []
    n_bytes = n_tokens = 0
    for text in texts:
        ids = tokenizer.encode(text).ids
        if not ids:
            continue
        n_bytes += len(text.encode("utf-8"))
        n_tokens += len(ids)
        requests += windows([prefix, *ids], seq_len, stride)
    if not n_bytes:
        raise DocumentsError("no text to score: every document is empty")
    nats = -sum(continuation_logprobs(model, requests, batch_size))
    return {
        "bpb": nats / (math.log(2) * n_bytes),
        "nats": nats,
        "tokens": n_tokens,
        "bytes": n_bytes,
        "perplexity": math.exp(nats / n_tokens),
    }
