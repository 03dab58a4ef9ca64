"""Tokenize stage logic without Spark: tokenizer round trip, chat template, splitting, packing."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.tokenize import (
    TokenizeError,
    check_bucket_names,
    document_hash,
    encode_documents,
    is_validation,
    pack_documents,
    reject_reason,
    split_document,
)
from refinery.shards import ShardError, open_shard, write_shard
from refinery.tokenizer import (
    _LONG_RUN,
    ASSISTANT,
    BOS,
    END_OF_TURN,
    EOS,
    MAX_TRAINING_RUN,
    SPECIAL_TOKENS,
    USER,
    TokenizerError,
    encode_chat,
    load_tokenizer,
    special_ids,
    train_tokenizer,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 20,
    "Le renard brun rapide saute par-dessus le chien paresseux. " * 20,
    "def main():\n    return 42  # code too\n" * 20,
    "Zahlen 1234567890, Emoji 🦊🐶 und Umlaute äöü. " * 20,
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer(iter(CORPUS), vocab_size=600).save(str(path))
    return load_tokenizer(path)


def round_trip(tokenizer, text: str) -> str:
    return tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_unicode_text_round_trips_exactly(tokenizer, text):
    assert round_trip(tokenizer, text) == text


@pytest.mark.parametrize(
    "text",
    [
        "🦊👩‍👩‍👧‍👦🏳️‍🌈",
        "\x00\x01\x7f\ufffd\ufeff",
        "tabs\tand\r\nwindows lines\n\n  leading spaces",
        "invalid-looking bytes as text: \\xff\\xfe Ã©",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 中文 and العربية",
        f"a document quoting {EOS} and {USER} literally",
    ],
)
def test_awkward_text_round_trips(tokenizer, text):
    assert round_trip(tokenizer, text) == text


def test_document_text_never_produces_special_ids(tokenizer):
    ids = tokenizer.encode(f"{BOS} hello {EOS}{END_OF_TURN}").ids
    assert not set(ids) & set(special_ids(tokenizer).values())


def test_special_tokens_come_first_in_a_fixed_order(tokenizer):
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    # every byte is in the base vocabulary; merges stop early on a corpus this small
    assert 256 + len(SPECIAL_TOKENS) < tokenizer.get_vocab_size() <= 600


def test_training_is_deterministic():
    first = train_tokenizer(iter(CORPUS), vocab_size=600).to_str()
    assert train_tokenizer(iter(CORPUS), vocab_size=600).to_str() == first


def test_chat_template_marks_turns_with_special_tokens(tokenizer):
    ids = special_ids(tokenizer)
    messages = [
        {"role": "user", "content": f"hi {ASSISTANT}"},
        {"role": "assistant", "content": "yo"},
    ]
    chat = encode_chat(tokenizer, messages, generation_prompt=True)
    assert chat[0] == ids[BOS] and chat[1] == ids[USER] and chat[-1] == ids[ASSISTANT]
    assert chat.count(ids[END_OF_TURN]) == 2
    assert chat.count(ids[ASSISTANT]) == 2  # the forged one in the content is plain text
    with pytest.raises(TokenizerError, match="role 'robot'"):
        encode_chat(tokenizer, [{"role": "robot", "content": "x"}])


def test_tokenizer_files_without_special_tokens_are_refused(tmp_path, tokenizer):
    bare = tmp_path / "bare.json"
    content = json.loads(tokenizer.to_str())
    content["added_tokens"] = []
    del content["model"]["vocab"][EOS]
    bare.write_text(json.dumps(content))
    with pytest.raises(TokenizerError, match="lacks the special tokens"):
        load_tokenizer(bare)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TokenizerError, match="not a tokenizers JSON file"):
        load_tokenizer(broken)
    binary = tmp_path / "model.parquet"
    binary.write_bytes(b"PAR1\x15\xcc\x00")
    with pytest.raises(TokenizerError, match=r"model.parquet: not a tokenizers JSON file \(byte 5"):
        load_tokenizer(binary)
    folder = tmp_path / "tokens"  # the tokens folder, which holds its tokenizer.json
    folder.mkdir()
    with pytest.raises(TokenizerError, match=r"tokens: is a folder, not a tokenizer file$"):
        load_tokenizer(folder)
    (folder / "tokenizer.json").write_text(tokenizer.to_str())
    with pytest.raises(
        TokenizerError, match=r"not a tokenizer file \(give .*tokens/tokenizer.json\)"
    ):
        load_tokenizer(folder)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")


def test_a_tokenizer_with_its_special_tokens_at_other_ids_is_refused(tmp_path):
    """Generation stops at ids 1 and 6: special tokens added after training sit elsewhere."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    late = Tokenizer(models.BPE())
    late.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=alphabet, show_progress=False)
    late.train_from_iterator(["some text to learn from"] * 10, trainer=trainer)
    late.add_special_tokens(list(SPECIAL_TOKENS))
    late.save(str(tmp_path / "late.json"))
    with pytest.raises(TokenizerError, match=r"must have ids 0-6 in the order .*it has \{"):
        load_tokenizer(tmp_path / "late.json")


def test_a_tokenizer_whose_special_tokens_text_could_produce_is_refused(tmp_path, tokenizer):
    """Only tokens marked special are protected from document text; a normaliser would
    rewrite text so shards no longer decode to their documents."""
    unmarked = json.loads(tokenizer.to_str())
    for token in unmarked["added_tokens"]:
        token["special"] = token["content"] not in (EOS, USER)
    (tmp_path / "unmarked.json").write_text(json.dumps(unmarked))
    with pytest.raises(TokenizerError, match=r"\|user\|>.\] are not marked"):
        load_tokenizer(tmp_path / "unmarked.json")
    normalised = json.loads(tokenizer.to_str())
    normalised["normalizer"] = {"type": "NFKC"}
    (tmp_path / "nfkc.json").write_text(json.dumps(normalised))
    with pytest.raises(TokenizerError, match="has a normalizer"):
        load_tokenizer(tmp_path / "nfkc.json")


def test_a_tokenizer_adding_tokens_or_not_byte_level_is_refused(tmp_path, tokenizer):
    """A BOS post-processor (an HF save with add_bos_token) would put BOS into every chat and
    eval encode; a WordLevel-like model with [UNK], or a pre-tokenizer dropping white space,
    loses text the manifest counts."""
    from tokenizers import Tokenizer, pre_tokenizers, processors

    with_bos = Tokenizer.from_str(tokenizer.to_str())
    with_bos.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, 0)]
    )
    with_bos.save(str(tmp_path / "bos.json"))
    with pytest.raises(TokenizerError, match=r"post-processor adds 1 special token"):
        load_tokenizer(tmp_path / "bos.json")
    undecoded = json.loads(tokenizer.to_str())
    undecoded["decoder"] = None
    (tmp_path / "plain.json").write_text(json.dumps(undecoded))
    with pytest.raises(TokenizerError, match=r"not a byte-level BPE tokenizer \(decoder NoneType"):
        load_tokenizer(tmp_path / "plain.json")
    # a byte-level decoder after a pre-tokenizer that drops white space still loses text
    spaceless = Tokenizer.from_str(tokenizer.to_str())
    spaceless.pre_tokenizer = pre_tokenizers.Whitespace()
    spaceless.save(str(tmp_path / "spaceless.json"))
    with pytest.raises(TokenizerError, match=r"spaceless.json: does not decode text back"):
        load_tokenizer(tmp_path / "spaceless.json")


def test_a_long_run_trains_as_its_first_thousand_characters():
    # one piece to the trainer, whose time grows with its square: 40,000 ideographs took 12 s
    text = "The quick brown fox jumps over the lazy dog. " * 20
    runs = ("=" * (MAX_TRAINING_RUN + 5000), "中文" * MAX_TRAINING_RUN, " " * 9000)
    # U+001C..U+001F: white space to Python's \s, punctuation to the pre-tokenizer
    for run in (*runs, "=\x1c" * MAX_TRAINING_RUN):
        cut = run[:MAX_TRAINING_RUN]
        trained = train_tokenizer([text, f"a {run} b"], 400)
        assert trained.to_str() == train_tokenizer([text, f"a {cut} b"], 400).to_str()
        assert trained.decode(trained.encode(run).ids) == run  # encoding is whole
    # tried at a run's start only: from each of its characters, a run just under the limit
    # was scanned again and again (1 MB of 999-character runs took 1 s)
    assert _LONG_RUN.match("x" * 1500, 1) is None and _LONG_RUN.match("x" * 1500, 0)


def test_encode_documents_appends_eos(tokenizer):
    eos = tokenizer.token_to_id(EOS)
    docs = encode_documents(tokenizer, ["hello world", "fox"], np.dtype(np.uint16))
    assert [d[-1] for d in docs] == [eos, eos]
    assert docs[0].dtype == np.uint16
    assert tokenizer.decode(docs[0][:-1].tolist()) == "hello world"


@pytest.mark.parametrize("text", ["", "  \n\t ", "\u3000\u2028\xa0\x85", None])
def test_blank_documents_are_rejected(text):
    assert reject_reason(text) == "empty"
    assert reject_reason(" a ") is None
    assert reject_reason("\x1c\x1f") is None  # str.strip's extra separators are not White_Space


def test_validation_split_is_seeded_and_close_to_its_share():
    ids = [f"doc-{i}" for i in range(20_000)]
    held = [is_validation(document_hash(d, seed=1), 0.1) for d in ids]
    assert 0.09 < sum(held) / len(ids) < 0.11
    assert held == [is_validation(document_hash(d, seed=1), 0.1) for d in ids]
    assert held != [is_validation(document_hash(d, seed=2), 0.1) for d in ids]
    assert not any(is_validation(document_hash(d, seed=1), 0.0) for d in ids)


def test_long_documents_are_split_not_truncated():
    tokens = np.arange(25, dtype=np.uint16)
    pieces = split_document(tokens, 10)
    assert [len(p) for p in pieces] == [10, 10, 5]
    assert np.array_equal(np.concatenate(pieces), tokens)
    assert len(split_document(tokens, 25)) == 1
    # text of exactly the cap, then its EOS: no piece of the EOS alone
    assert [len(p) for p in split_document(np.arange(21, dtype=np.uint16), 10)] == [10, 9, 2]
    assert [len(p) for p in split_document(np.arange(3, dtype=np.uint16), 1)] == [1, 1, 1]


def test_pack_documents_writes_bounded_shards_that_read_back(tmp_path):
    rng = np.random.default_rng(0)
    docs = [("web", rng.integers(0, 500, size=n).astype(np.uint16), 4 * n) for n in (30, 7, 55)]
    docs.insert(1, ("validation", np.arange(5, dtype=np.uint16), 20))
    entries = pack_documents(
        iter(docs), tmp_path, task=3, shard_tokens=40, max_document_tokens=25, dtype="uint16"
    )
    web = [e for e in entries if e["prefix"] == "web"]
    assert all(e["tokens"] <= 40 for e in entries)
    assert all(e["path"].startswith(f"{e['prefix']}/part-00003-") for e in entries)
    assert sum(e["tokens"] for e in web) == 92 and sum(e["bytes"] for e in web) == 4 * 92
    assert sum(e["documents"] for e in web) == 2 + 1 + 3  # 30 -> 25+5, 7, 55 -> 25+25+5
    stream = np.concatenate([open_shard(tmp_path / e["path"]).tokens for e in web])
    assert np.array_equal(stream, np.concatenate([d for p, d, _ in docs if p == "web"]))


def test_packed_shards_hold_the_bytes_the_format_specifies(tmp_path):
    """Shards are written a document at a time; the bytes are DESIGN.md's, spelled out here
    independently of the writer: header, little-endian ids, uint64 end offsets."""
    docs = [np.arange(n, dtype=np.int64) + 60_000 for n in (3, 1, 8)]  # cast to the shard dtype
    entries = pack_documents(iter([("web", d, 1) for d in docs]), tmp_path, 0, 100, 100, "uint16")
    header = b"RFTOKENS" + (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    header += (12).to_bytes(8, "little") + (3).to_bytes(8, "little")
    ids = b"".join(int(t).to_bytes(2, "little") for d in docs for t in d)
    shard = tmp_path / entries[0]["path"]
    assert shard.read_bytes() == header.ljust(64, b"\0") + ids
    assert shard.with_suffix(".idx").read_bytes() == b"".join(
        end.to_bytes(8, "little") for end in (3, 4, 12)
    )
    assert entries[0] | {"sha256": None} == {
        "prefix": "web", "path": "web/part-00000-00000.bin", "tokens": 12, "documents": 3,
        "bytes": 3, "sha256": None,
    }  # fmt: skip


def test_a_task_that_fails_mid_shard_leaves_only_its_finished_shards(tmp_path):
    def documents():
        for _ in range(5):
            yield "web", np.arange(1, 11, dtype=np.uint16), 10
        raise OSError("connection reset while reading the input")

    with pytest.raises(OSError, match="connection reset"):
        pack_documents(documents(), tmp_path, 2, 20, 20, "uint16")
    left = sorted(p.name for p in (tmp_path / "web").iterdir())
    assert left == [f"part-00002-0000{n}.{s}" for n in (0, 1) for s in ("bin", "idx")]


def test_a_shard_that_cannot_be_finished_leaves_nothing_behind(tmp_path, monkeypatch):
    from refinery import shards
    from refinery.manifest import write_documents_shard

    with pytest.raises(ShardError, match="at least one token"):
        write_documents_shard(tmp_path, "a/s.bin", [np.arange(3), np.zeros(0)], "uint16", [1, 1])
    assert list((tmp_path / "a").iterdir()) == []

    def full_disk(f):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shards, "_finish", full_disk)  # the last flush of every bucket fails
    docs = [("a", np.arange(1, 4, dtype=np.uint16), 3), ("b", np.arange(1, 3, dtype=np.uint16), 2)]
    with pytest.raises(OSError, match="No space left"):
        pack_documents(iter(docs), tmp_path / "task", 0, 100, 100, "uint16")
    assert [p for p in (tmp_path / "task").rglob("*") if p.is_file()] == []


def test_temp_files_of_a_killed_attempt_are_removed(tmp_path):
    from refinery.shards import ShardWriter, remove_unfinished

    (tmp_path / "web").mkdir()
    write_shard(tmp_path / "web" / "part-00000-00000.bin", np.arange(3, dtype=np.uint16), [3])
    killed = ShardWriter(tmp_path / "web" / "part-00001-00000.bin", "uint16")
    killed.add(np.arange(5, dtype=np.uint16))  # never closed: the process died here
    assert [p.name for p in remove_unfinished(tmp_path)] == [killed._tmp.name]
    killed._file.close()
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == [
        "part-00000-00000.bin", "part-00000-00000.idx"
    ]  # fmt: skip


def test_an_empty_document_is_refused(tmp_path):
    from refinery.shards import ShardWriter

    writer = ShardWriter(tmp_path / "s.bin", "uint16")
    with pytest.raises(ShardError, match="at least one token"):
        writer.add(np.zeros(0, dtype=np.uint16))
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_shard_with_the_wrong_dtype_for_the_manifest_is_refused(tmp_path):
    path = tmp_path / "shard-00000.bin"
    write_shard(path, np.arange(10, dtype=np.uint32), np.array([10]))
    with pytest.raises(ShardError, match="4 bytes per token, the manifest's dtype uint16"):
        open_shard(path, 10, 1, "uint16")


def test_bucket_names_must_be_folder_names():
    check_bucket_names(["web", "wiki.en", "code_2"])
    for bad in ("validation", "manifest.json", "tokenizer.json", "../x", "a/b", ""):
        with pytest.raises(TokenizeError, match="not usable folder names"):
            check_bucket_names(["web", bad])
    # `tokenize --input OUT/extract OUT/mix`: the extract rows were never mixed
    with pytest.raises(TokenizeError, match="some documents have no bucket: they were not mixed"):
        check_bucket_names(["web", None])


def test_numbers_are_cut_into_groups_of_three_digits_unless_gpt2_is_asked():
    corpus = [f"In {year} it cost {year * 7919} coins." for year in range(1900, 2100)] * 3
    llama3 = train_tokenizer(iter(corpus), vocab_size=600)
    pieces = [llama3.decode([i]) for i in llama3.encode("paid 1234567 in 2024").ids]
    assert all(len(p.strip()) <= 3 for p in pieces if p.strip().isdigit())
    assert llama3.decode(llama3.encode("paid 1234567 in 2024").ids) == "paid 1234567 in 2024"
    gpt2 = train_tokenizer(iter(corpus), vocab_size=600, pretokenizer="gpt2")
    assert any(len(gpt2.decode([i]).strip()) > 3 for i in gpt2.encode(" 2024 2025").ids)


def test_a_tokenizer_that_drops_bytes_or_encodes_at_random_is_refused(tmp_path, tokenizer):
    """A byte-level BPE trained without every byte's symbol dropped the bytes it never saw
    (Arabic came back as U+FFFD from the shards); BPE-dropout saved in the file encoded the
    same text differently on every run."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from refinery.tokenizer import _BYTE_SYMBOLS

    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    assert set(_BYTE_SYMBOLS.values()) <= alphabet and len(_BYTE_SYMBOLS) == 256 - 13
    partial = Tokenizer(models.BPE())
    partial.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    partial.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    partial.train_from_iterator(["some plain ascii text to learn from"] * 10, trainer=trainer)
    partial.save(str(tmp_path / "partial.json"))
    with pytest.raises(TokenizerError, match=r"lacks the byte-level symbols of \d+ bytes"):
        load_tokenizer(tmp_path / "partial.json")
    dropout = json.loads(tokenizer.to_str())
    dropout["model"]["dropout"] = 0.1
    (tmp_path / "dropout.json").write_text(json.dumps(dropout))
    with pytest.raises(TokenizerError, match="has dropout 0.1"):
        load_tokenizer(tmp_path / "dropout.json")
    unlisted = json.loads(tokenizer.to_str())
    unlisted["added_tokens"] = []  # the special tokens in the vocabulary alone: not protected
    (tmp_path / "unlisted.json").write_text(json.dumps(unlisted))
    with pytest.raises(TokenizerError, match='are not in its "added_tokens"'):
        load_tokenizer(tmp_path / "unlisted.json")
