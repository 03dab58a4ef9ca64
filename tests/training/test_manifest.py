import json
import math

import numpy as np
import pytest

from refinery.manifest import ManifestError, fingerprint, read_manifest
from refinery.shards import ShardError, open_shard, write_shard
from training.synthetic import write_dataset


def test_round_trip_and_fingerprint(tmp_path):
    written = write_dataset(tmp_path, {"a": 3000, "b": 2000}, seed=1)
    read = read_manifest(tmp_path)
    assert read.fingerprint == written.fingerprint
    assert set(read.buckets) == {"a", "b"}
    assert read.buckets["a"].tokens == sum(s.tokens for s in read.buckets["a"].shards)
    assert read.mixture("pretrain") == {"a": 0.5, "b": 0.5}
    content = json.loads((tmp_path / "manifest.json").read_text())
    assert fingerprint(content) == read.fingerprint
    content["max_epochs"] = 7.0
    assert fingerprint(content) != read.fingerprint


def _edit(root, change):
    path = root / "manifest.json"
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c.pop("dtype"), "'dtype' is missing"),
        (lambda c: c["tokenizer"].update(eos_id="x"), "'tokenizer.eos_id' must be int"),
        (lambda c: c["buckets"]["a"].update(tokens=1), "'buckets.a.tokens' is 1 but"),
        (lambda c: c["mixtures"]["pretrain"].update(zz=1.0), "'mixtures.pretrain.zz' names no"),
        (lambda c: c["mixtures"]["pretrain"].update(a=-1), "'mixtures.pretrain.a' weight"),
        (lambda c: c["mixtures"]["pretrain"].update(a=math.nan), "'mixtures.pretrain.a' weight"),
        (lambda c: c["mixtures"]["pretrain"].update(a=math.inf), "'mixtures.pretrain.a' weight"),
        (lambda c: c.update(max_epochs=math.inf), "'max_epochs' must be a positive number"),
        (lambda c: c.update(max_epochs=math.nan), "'max_epochs' must be a positive number"),
        (lambda c: c.update(version=2), "'version' is 2"),
        (lambda c: c["buckets"]["a"]["shards"][0].update(path="/etc/x"), "must be relative"),
        (lambda c: c["tokenizer"].update(file="/etc/passwd"), "'tokenizer.file' must be rel"),
        (lambda c: c["buckets"].update(b=c["buckets"]["a"]), "is also a shard of buckets.a"),
    ],
)
def test_invalid_manifest_names_file_and_key(tmp_path, change, key):
    write_dataset(tmp_path, {"a": 3000, "b": 2000})
    _edit(tmp_path, change)
    with pytest.raises(ManifestError) as err:
        read_manifest(tmp_path)
    assert key in str(err.value)
    assert str(tmp_path / "manifest.json") in str(err.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path)


def test_the_manifest_file_named_for_its_folder_is_said_so(tmp_path):
    """`inspect-shards OUT/tokens/manifest.json` said "manifest.json/manifest.json: manifest
    not found"."""
    write_dataset(tmp_path, {"a": 3000})
    with pytest.raises(ManifestError, match=r"manifest.json: is a file: name the tokens folder"):
        read_manifest(tmp_path / "manifest.json")


def test_unknown_mixture_is_named(tmp_path):
    manifest = write_dataset(tmp_path, {"a": 3000})
    with pytest.raises(ManifestError, match="no mixture 'hq'"):
        manifest.mixture("hq")


def test_truncated_and_corrupted_shards_are_refused(tmp_path):
    manifest = write_dataset(tmp_path, {"a": 3000}, shards_per_bucket=1)
    entry = manifest.buckets["a"].shards[0]
    shard = open_shard(entry.path, entry.tokens, entry.documents)
    assert shard.num_docs == entry.documents
    with pytest.raises(ShardError, match="the manifest says"):
        open_shard(entry.path, entry.tokens + 1)
    raw = entry.path.read_bytes()
    entry.path.write_bytes(raw[:-10])
    with pytest.raises(ShardError, match="truncated or corrupted"):
        open_shard(entry.path)
    entry.path.write_bytes(b"NOTTOKEN" + raw[8:])
    with pytest.raises(ShardError, match="bad magic"):
        open_shard(entry.path)
    entry.path.write_bytes(raw[:40] + b"\x07" + raw[41:])  # DESIGN.md: zero padding
    with pytest.raises(ShardError, match="header bytes 32..63 are not the zero padding"):
        open_shard(entry.path)
    entry.path.write_bytes(raw)
    idx = entry.path.with_suffix(".idx")
    ends = np.fromfile(idx, dtype="<u8")
    ends[[0, 1]] = ends[[1, 0]]
    ends.tofile(idx)
    with pytest.raises(ShardError, match="do not increase"):
        open_shard(entry.path)


@pytest.mark.parametrize(
    ("tokens", "ends"),
    [(10, [5, 3, 10]), (10, []), (10, [0, 10]), (0, [0])],
    ids=["decreasing", "no documents", "an empty document", "a document of no tokens"],
)
def test_the_writer_refuses_offsets_the_reader_would(tmp_path, tokens, ends):
    with pytest.raises(ShardError, match="offsets must increase and end at the token count"):
        write_shard(tmp_path / "s.bin", np.arange(tokens, dtype=np.uint16), ends)
    assert not list(tmp_path.iterdir())


def test_a_token_id_outside_the_vocabulary_names_its_shard(tmp_path):
    from training.data import TokenLoader, validation_windows

    manifest = write_dataset(tmp_path, {"a": 3000}, shards_per_bucket=1)
    entry = manifest.buckets["a"].shards[0]
    raw = bytearray(entry.path.read_bytes())
    raw[64 : 64 + 400] = b"\xff" * 400  # the first 200 ids of the body (2 bytes each)
    entry.path.write_bytes(bytes(raw))
    loader = TokenLoader(manifest, "pretrain", 32, 4, 1, 4, seed=0)
    said = r"has id 65535, outside the vocabulary of \d+ \(manifest.json's tokenizer.vocab_size\)"
    with pytest.raises(ShardError, match=rf"{entry.path.name}: token \d+ {said}: the shard or"):
        for step in range(60):  # until a window reaches the damaged stretch
            loader.make_batch(step, loader.cursor_at(step))
    assert validation_windows(manifest, 32, 256)  # the other shards still read


def test_a_window_reads_across_an_empty_shard(tmp_path):
    from refinery.manifest import ShardEntry, Split
    from training.data import WindowedSplit

    parts = [
        np.arange(10, dtype=np.uint16),
        np.array([], np.uint16),
        np.arange(10, 30, dtype=np.uint16),
    ]
    entries = []
    for i, tokens in enumerate(parts):
        path = tmp_path / f"s{i}.bin"
        write_shard(path, tokens, np.array([len(tokens)] if len(tokens) else [], np.int64))
        entries.append(ShardEntry(path, len(tokens), int(len(tokens) > 0), 4 * len(tokens)))
    split = Split(30, 2, 120, tuple(entries))
    windows = WindowedSplit(split, seq_len=8, dtype="uint16", vocab_size=64)
    assert windows.window(1).tolist() == [8, 9, *range(10, 17)]


def test_inspect_shards_checks_a_folder_of_many_shards_holding_few_open(tmp_path, capsys):
    """Every shard held open (two descriptors each) ran out of descriptors on large folders."""
    import os

    from refinery.inspect_shards import main as inspect_shards
    from refinery.inspect_shards import verify
    from refinery.manifest import split_entry, write_documents_shard, write_manifest
    from refinery.tokenizer import load_tokenizer
    from training.synthetic import write_text_dataset

    root = write_text_dataset(tmp_path / "tokens", [f"Text number {i} is here." for i in range(60)])
    content = json.loads((root / "manifest.json").read_text())
    tokenizer = load_tokenizer(root / "tokenizer.json")
    texts = [f"Document {i} of many small shards." for i in range(300)]
    shards = [
        write_documents_shard(root, f"many/{i}.bin", [np.array(t.ids)], "uint16", [len(text)])
        for i, (t, text) in enumerate(zip(tokenizer.encode_batch(texts), texts, strict=True))
    ]
    content["buckets"]["many"] = split_entry(shards)
    write_manifest(root, content)
    before = len(os.listdir("/proc/self/fd"))
    checked = verify(read_manifest(root))  # held, as inspect-shards holds it to show documents
    assert len(os.listdir("/proc/self/fd")) - before < 10
    assert sum(len(shards) for shards in checked.values()) == 302
    assert inspect_shards([str(root), "--docs", "5"]) == 0
    assert "ok: 302 shards match manifest.json" in capsys.readouterr().out


def test_weights_whose_sum_overflows_still_share_the_mixture(tmp_path):
    write_dataset(tmp_path, {"a": 3000, "b": 2000}, seed=1)
    _edit(tmp_path, lambda c: c["mixtures"].update(huge={"a": 1.5e308, "b": 0.5e308}))
    assert read_manifest(tmp_path).mixture("huge") == {"a": 0.75, "b": 0.25}
    # other weights keep the bits of a plain division: a run resumed on them draws the same
    _edit(tmp_path, lambda c: c["mixtures"].update(plain={"a": 0.84, "b": 0.76}))
    total = 0.84 + 0.76
    assert read_manifest(tmp_path).mixture("plain") == {"a": 0.84 / total, "b": 0.76 / total}


def test_a_negative_count_is_refused(tmp_path):
    """Nothing else checks a shard's `bytes`: -5 passed, and inspect-shards said ok."""
    write_dataset(tmp_path, {"a": 3000}, seed=1)

    def negative(content):
        content["buckets"]["a"]["shards"][0]["bytes"] -= 10**9
        content["buckets"]["a"]["bytes"] -= 10**9

    _edit(tmp_path, negative)
    with pytest.raises(ManifestError, match=r"key 'buckets.a.shards\[0\].bytes' must be >= 0"):
        read_manifest(tmp_path)
