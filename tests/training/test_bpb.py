"""Bits-per-byte: sliding windows cover every token once; totals match a hand computation."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from refinery.tokenizer import EOS, load_tokenizer
from training.config import ModelConfig
from training.evaluation.bpb import DocumentsError, bits_per_byte, read_documents, windows
from training.model import Transformer
from training.pretrained import load_pretrained

TEXTS = [
    "The cat sees a red ball. A dog likes the old house.",
    "Our team paints green apples. " * 30,  # longer than the 64-token context
    "",
    "Caf\u00e9 \u2014 na\u00efve r\u00e9sum\u00e9.",  # multi-byte UTF-8
]


@pytest.mark.parametrize(("seq_len", "stride"), [(1, 1), (4, 1), (4, 3), (4, 4), (7, 2), (7, 7)])
def test_windows_score_every_token_exactly_once(seq_len, stride):
    for length in range(2, 30):
        tokens = list(range(length))  # token i sits at position i
        scored = []
        for window, n in windows(tokens, seq_len, stride):
            assert len(window) <= seq_len + 1 and 1 <= n < len(window)
            scored += window[-n:]
        assert scored == list(range(1, length))


def uniform_model(vocab_size: int) -> Transformer:
    """All weights zero: every hidden state and logit is 0, so p(token) = 1 / vocab_size."""
    model = Transformer(ModelConfig(vocab_size=vocab_size, seq_len=16))
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    return model


def test_a_uniform_model_costs_log2_vocab_bits_per_token(text_tokens):
    tokenizer = load_tokenizer(text_tokens / "tokenizer.json")
    vocab = tokenizer.get_vocab_size()
    result = bits_per_byte(uniform_model(vocab), tokenizer, TEXTS, batch_size=3)
    tokens = sum(len(tokenizer.encode(t).ids) for t in TEXTS)
    n_bytes = sum(len(t.encode("utf-8")) for t in TEXTS)
    assert result["tokens"] == tokens and result["bytes"] == n_bytes
    assert result["nats"] == pytest.approx(tokens * math.log(vocab), rel=1e-6)
    assert result["bpb"] == pytest.approx(tokens * math.log2(vocab) / n_bytes, rel=1e-6)
    assert result["perplexity"] == pytest.approx(vocab, rel=1e-6)


def hand_nats(model: Transformer, ids: list[int], chunk: int) -> float:
    """Non-overlapping chunks of `chunk` targets, each with its preceding token as context."""
    total = 0.0
    for start in range(0, len(ids) - 1, chunk):
        piece = torch.tensor([ids[start : start + chunk + 1]])
        with torch.no_grad():
            logprobs = model(piece[:, :-1]).double().log_softmax(-1)
        total -= logprobs.gather(-1, piece[:, 1:, None]).sum().item()
    return total


def test_a_trained_model_matches_its_own_logits_by_hand(pretrained):
    loaded = load_pretrained(pretrained)
    model, tokenizer = loaded.model, loaded.tokenizer()
    seq_len = model.cfg.seq_len
    eos = tokenizer.token_to_id(EOS)
    docs = [[eos, *tokenizer.encode(text).ids] for text in TEXTS if text]
    assert max(map(len, docs)) > 2 * seq_len
    expected = sum(hand_nats(model, ids, seq_len) for ids in docs)
    result = bits_per_byte(model, tokenizer, TEXTS, batch_size=2, stride=seq_len)
    assert result["nats"] == pytest.approx(expected, rel=1e-5)
    assert result["bpb"] == pytest.approx(expected / math.log(2) / result["bytes"], rel=1e-5)
    overlapping = bits_per_byte(model, tokenizer, TEXTS, stride=seq_len // 4)
    assert overlapping["tokens"] == result["tokens"]
    assert overlapping["nats"] != pytest.approx(result["nats"], rel=1e-5)  # more context
    short = [text for text in TEXTS if len(tokenizer.encode(text).ids) < seq_len]
    assert bits_per_byte(model, tokenizer, short, stride=1)["nats"] == pytest.approx(
        sum(hand_nats(model, [eos, *tokenizer.encode(t).ids], seq_len) for t in short if t),
        rel=1e-5,
    )  # a document inside one window is scored in one piece, whatever the stride


def test_documents_from_text_jsonl_and_parquet(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    assert read_documents(tmp_path / "a.txt") == ["one\n\ntwo\n"]
    rows = [{"text": "first", "id": 1}, {"text": "second"}]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_documents(tmp_path / "b.jsonl") == ["first", "second"]
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["p", None]}), tmp_path / "c.parquet")
    assert read_documents(tmp_path / "c.parquet") == ["p", ""]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": 3}\n', "line 2: no string 'text' field"),
        ("bad.jsonl", '{"text": "ok"}\n{"text"\n', "line 2, column 8"),
        ("bad.csv", "text\nhello\n", "expected a .txt, .jsonl or .parquet"),
        ("empty.jsonl", "", r"empty.jsonl: no text to score \(0 empty documents\)"),
        ("blank.jsonl", '{"text": ""}\n', r"no text to score \(1 empty documents\)"),
        ("empty.txt", "", "empty.txt: no text to score"),
    ],
)
def test_unreadable_documents_are_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DocumentsError, match=message):
        read_documents(tmp_path / name)


def test_files_that_are_not_documents_are_named(tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "d.parquet")
    with pytest.raises(DocumentsError, match="no 'text' column"):
        read_documents(tmp_path / "d.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(DocumentsError, match="its 'text' column is int64, not string"):
        read_documents(tmp_path / "ints.parquet")
    unchecked = pa.array([b"fine", b"a lone surrogate \xed\xa0\x80"], pa.binary())
    pq.write_table(pa.table({"text": unchecked.view(pa.string())}), tmp_path / "bad.parquet")
    with pytest.raises(DocumentsError, match=r"bad.parquet: row 1: its text is not UTF-8 \(inv"):
        read_documents(tmp_path / "bad.parquet")
    named = pa.table({"id": ["d0", "d5"], "text": unchecked.view(pa.string())})
    pq.write_table(named, tmp_path / "named.parquet")
    with pytest.raises(DocumentsError, match="named.parquet: document 'd5': its text is not UTF-8"):
        read_documents(tmp_path / "named.parquet")
    bad_ids = pa.array([b"d0", b"d\xff"], pa.binary()).view(pa.string())  # no better
    pq.write_table(named.set_column(0, "id", bad_ids), tmp_path / "ids.parquet")
    with pytest.raises(DocumentsError, match="ids.parquet: row 1: its text is not UTF-8"):
        read_documents(tmp_path / "ids.parquet")
    with pytest.raises(DocumentsError, match="file not found"):
        read_documents(tmp_path / "missing.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DocumentsError, match="empty: a folder without Parquet parts"):
        read_documents(tmp_path / "empty")
    (tmp_path / "e.txt").write_bytes(b"fine\nbad \xff byte\n")
    with pytest.raises(DocumentsError, match=r"e.txt: line 2: byte b'\\xff' is not UTF-8"):
        read_documents(tmp_path / "e.txt")
    (tmp_path / "f.parquet").write_bytes(b"not parquet")
    with pytest.raises(DocumentsError, match="not a readable Parquet file"):
        read_documents(tmp_path / "f.parquet")


def test_a_stage_folder_is_read_part_by_part_in_name_order(tmp_path):
    """`--bpb OUT/dedup`: a curation stage's output is a folder of Parquet parts."""
    stage = tmp_path / "dedup"
    stage.mkdir()
    pq.write_table(pa.table({"text": ["b1", "b2"]}), stage / "part-00001.parquet")
    pq.write_table(pa.table({"text": ["a1"]}), stage / "part-00000.parquet")
    (stage / "_SUCCESS").touch()
    assert read_documents(stage) == ["a1", "b1", "b2"]
