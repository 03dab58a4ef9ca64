import numpy as np
import pytest
import torch

from refinery.manifest import ShardEntry, Split, read_manifest, write_documents_shard
from training.data import NoTrainingData, TokenLoader, WindowedSplit, validation_windows
from training.synthetic import write_dataset


def make_loader(manifest, seed=0, rank=0, world=1, accum=2, micro=4, mixture="pretrain"):
    windows = world * accum * micro
    return TokenLoader(manifest, mixture, 32, windows, accum, micro, seed, rank, world)


def batches(loader, steps, cursor=None):
    cursor = cursor or loader.initial_cursor()
    out = []
    for step in range(cursor["step"], cursor["step"] + steps):
        batch = loader.make_batch(step, cursor)
        out.append(batch.tokens)
        cursor = batch.cursor
    return out, cursor


def stream_of(split: WindowedSplit) -> np.ndarray:
    """Every token of the split's shards, one after the other."""
    return np.concatenate([split.maps.read(*shard, 0, shard[2]) for shard in split.shards])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    return write_dataset(root, {"a": 20_000, "b": 10_000}, seed=5)


def test_batches_are_windows_of_the_bucket_streams(manifest):
    loader = make_loader(manifest)
    (first,), _ = batches(loader, 1)
    assert first.shape == (2, 4, 33) and first.dtype == torch.int64
    streams = [stream_of(b) for b in loader.buckets]
    for window in first.reshape(-1, 33).numpy():
        assert any(
            any(np.array_equal(t[i : i + 33], window) for i in range(0, len(t) - 32, 32))
            for t in streams
        )


def test_windows_run_across_many_small_shards(tmp_path):
    # shards far shorter than a window still train, and a window spans shard edges
    rng = np.random.default_rng(0)
    entries = []
    for k in range(12):
        docs = [rng.integers(0, 500, size=int(rng.integers(5, 30))) for _ in range(2)]
        entry = write_documents_shard(tmp_path, f"a/shard-{k:05d}.bin", docs, "uint16", [1, 1])
        entries.append(ShardEntry(tmp_path / entry["path"], entry["tokens"], 2, 2))
    split = WindowedSplit(Split(0, 0, 0, tuple(entries)), 32)
    stream = stream_of(split)
    assert min(e.tokens for e in entries) < 33 and split.num_windows > 5
    assert split.num_windows == (len(stream) - 1) // 32
    for i in range(split.num_windows):
        assert np.array_equal(split.window(i), stream[i * 32 : i * 32 + 33])


def test_a_split_of_many_shards_holds_few_of_them_open(tmp_path):
    """Two descriptors a shard held open ran out of them (1,024 by default) at ~500 shards."""
    import os

    rng = np.random.default_rng(0)
    entries = []
    for k in range(300):
        docs = [rng.integers(0, 500, size=40)]
        entry = write_documents_shard(tmp_path, f"a/shard-{k:05d}.bin", docs, "uint16", [1])
        entries.append(ShardEntry(tmp_path / entry["path"], entry["tokens"], 1, 1))
    before = len(os.listdir("/proc/self/fd"))
    split = WindowedSplit(Split(0, 0, 0, tuple(entries)), 32)
    windows = [split.window(i) for i in range(split.num_windows)]
    assert len(os.listdir("/proc/self/fd")) - before <= split.maps.max_open < 100
    assert np.array_equal(
        np.concatenate([w[:-1] for w in windows]), stream_of(split)[:-1][: 32 * len(windows)]
    )


def test_a_shard_written_again_while_a_run_reads_it_is_said(tmp_path):
    """Mapped only while read, a shard is opened again by its path: a `tokenize --force` into
    the same folder mid-run would feed the new tokens at the old offsets."""
    import os
    import shutil

    from refinery.shards import ShardError, ShardMaps

    entries = []
    for k in range(3):
        docs = [np.arange(40, dtype=np.int64) + k]
        entry = write_documents_shard(tmp_path, f"a/shard-{k:05d}.bin", docs, "uint16", [1])
        entries.append(ShardEntry(tmp_path / entry["path"], entry["tokens"], 1, 1))
    split = WindowedSplit(Split(0, 0, 0, tuple(entries)), 32, maps=ShardMaps(max_open=1))
    first = split.window(0)
    split.window(split.num_windows - 1)  # shard 0 let go
    assert np.array_equal(split.window(0), first)  # mapped again, unchanged
    split.window(split.num_windows - 1)
    rewritten = tmp_path / "again"
    write_documents_shard(rewritten, "shard.bin", [np.arange(40) + 7], "uint16", [1])
    for suffix in (".bin", ".idx"):
        shutil.copy(rewritten / f"shard{suffix}", tmp_path / f"a/new{suffix}")
        os.replace(tmp_path / f"a/new{suffix}", entries[0].path.with_suffix(suffix))
    with pytest.raises(ShardError, match=r"shard-00000.bin: replaced or removed since this run"):
        split.window(0)
    entries[1].path.unlink()
    with pytest.raises(ShardError, match=r"shard-00001.bin: replaced or removed"):
        split.window(2)  # from shard 1 on


def test_a_loader_maps_few_shards_however_many_buckets(tmp_path):
    import os

    buckets = {f"b{i}": 4_000 for i in range(6)}
    many = write_dataset(tmp_path, buckets, shards_per_bucket=60, seed=2)  # 360 shards
    before = len(os.listdir("/proc/self/fd"))
    loader = make_loader(many, accum=4, micro=16)
    batches(loader, 20)
    assert len({id(bucket.maps) for bucket in loader.buckets}) == 1
    assert len(os.listdir("/proc/self/fd")) - before <= loader.buckets[0].maps.max_open


def test_deterministic_from_seed_and_step(manifest):
    a, cursor_a = batches(make_loader(manifest, seed=1), 6)
    b, cursor_b = batches(make_loader(manifest, seed=1), 6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert cursor_a == cursor_b
    c, _ = batches(make_loader(manifest, seed=2), 6)
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    # the cursor at step 4 can be rebuilt from the seed alone, and resuming there matches
    loader = make_loader(manifest, seed=1)
    rebuilt = loader.cursor_at(4)
    tail, _ = batches(loader, 2, rebuilt)
    assert all(torch.equal(x, y) for x, y in zip(a[4:], tail, strict=True))


def test_ranks_are_disjoint_and_cover_the_global_batch(manifest):
    single, _ = batches(make_loader(manifest, world=1, accum=4), 3)
    r0, c0 = batches(make_loader(manifest, rank=0, world=2, accum=2), 3)
    r1, c1 = batches(make_loader(manifest, rank=1, world=2, accum=2), 3)
    assert c0 == c1  # every rank tracks the same global cursor
    for s in range(3):
        both = torch.cat([r0[s].reshape(-1, 33), r1[s].reshape(-1, 33)])
        assert torch.equal(both, single[s].reshape(-1, 33))
        rows0 = {tuple(r) for r in r0[s].reshape(-1, 33).tolist()}
        rows1 = {tuple(r) for r in r1[s].reshape(-1, 33).tolist()}
        assert not rows0 & rows1


def test_no_window_repeats_within_an_epoch(manifest):
    loader = make_loader(manifest, accum=1, micro=8)
    _, cursor = batches(loader, 0)
    seen = set()
    for step in range(40):
        plan = loader.plan(step, np.array([cursor["consumed"][n] for n in loader.names]))
        for b, pos in plan:
            idx = loader.window_index(b, pos)
            if pos < loader.buckets[b].num_windows:
                assert (b, idx) not in seen
                seen.add((b, idx))
        cursor = loader.make_batch(step, cursor).cursor


def test_mixture_proportions_follow_the_weights(tmp_path):
    mixtures = {"pretrain": {"a": 3.0, "b": 1.0}}
    manifest = write_dataset(tmp_path, {"a": 40_000, "b": 40_000}, mixtures=mixtures)
    loader = make_loader(manifest, accum=1, micro=16)
    consumed = loader.cursor_at(100)["consumed"]
    total = consumed["a"] + consumed["b"]
    assert total == 1600
    assert consumed["a"] / total == pytest.approx(0.75, abs=0.03)


def test_max_epochs_caps_a_bucket_then_others_take_its_share(tmp_path):
    mixtures = {"pretrain": {"small": 1.0, "big": 1.0}}
    manifest = write_dataset(
        tmp_path, {"small": 2_000, "big": 60_000}, mixtures=mixtures, max_epochs=2.0
    )
    loader = make_loader(manifest, accum=1, micro=16)
    cap = 2 * loader.buckets[loader.names.index("small")].num_windows
    consumed = loader.cursor_at(60)["consumed"]
    assert consumed["small"] == cap
    assert consumed["big"] == 60 * 16 - cap
    # a batch says whether it drew past every cap: not while `big` has windows left
    cursor, flags = loader.initial_cursor(), []
    for step in range(400):
        batch = loader.make_batch(step, cursor)
        cursor = batch.cursor
        flags.append(batch.past_cap)
    big_cap = 2 * loader.buckets[loader.names.index("big")].num_windows
    first = flags.index(True)
    assert (first * 16 < cap + big_cap <= (first + 1) * 16) and all(flags[first:])
    consumed = loader.cursor_at(400)["consumed"]
    assert consumed["small"] > cap and consumed["big"] > big_cap
    assert consumed["small"] + consumed["big"] == 400 * 16


def test_the_cursor_carries_the_buckets_outside_the_mixture(manifest):
    # the `anneal` mixture reads only bucket a; b's count passes through for a later run
    loader = make_loader(manifest, mixture="anneal")
    cursor = {"step": 0, "consumed": {"a": 5, "b": 7}}
    after = loader.make_batch(0, cursor).cursor
    assert after["consumed"] == {"a": 5 + 8, "b": 7}
    assert loader.initial_cursor()["consumed"] == {"a": 0, "b": 0}


def test_a_mixture_without_one_full_window_is_refused(tmp_path):
    manifest = write_dataset(tmp_path, {"a": 3_000})
    with pytest.raises(NoTrainingData, match="seq_len"):
        TokenLoader(manifest, "pretrain", 4096, 2, 1, 2, 0)


def test_prefetch_thread_yields_the_same_batches(manifest):
    loader = make_loader(manifest)
    expected, _ = batches(loader, 4)
    loader.start(loader.initial_cursor(), prefetch=2, pin_memory=False)
    try:
        got = [loader.next() for _ in range(4)]
    finally:
        loader.close()
    assert [b.step for b in got] == [0, 1, 2, 3]
    assert all(torch.equal(b.tokens, e) for b, e in zip(got, expected, strict=True))


def test_validation_windows_are_shared_by_the_ranks_whole(manifest):
    m = read_manifest(manifest.root)
    all_windows = validation_windows(m, 32, 1_000_000)
    for world in (2, 3):
        shares = [validation_windows(m, 32, 1_000_000, rank, world) for rank in range(world)]
        # every window once, whatever the number of ranks (a remainder was left out)
        by_index = {
            i: w
            for rank, share in enumerate(shares)
            for i, w in zip(range(rank, 10**6, world), share, strict=False)
        }
        assert sorted(by_index) == list(range(len(all_windows)))
        assert all(np.array_equal(by_index[i], w) for i, w in enumerate(all_windows))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_uint32_shards_for_large_vocabularies(tmp_path):
    manifest = write_dataset(tmp_path, {"a": 5_000}, vocab_size=70_000)
    assert manifest.dtype == "uint32"
    loader = make_loader(manifest)
    (tokens,), _ = batches(loader, 1)
    assert tokens.max().item() > 65_535 and tokens.max().item() < 70_000


def test_shards_whose_width_disagrees_with_the_manifest_dtype_are_refused(tmp_path):
    import json

    from refinery.shards import ShardError

    write_dataset(tmp_path, {"a": 5_000}, vocab_size=512)  # uint16 shards
    content = json.loads((tmp_path / "manifest.json").read_text())
    content["dtype"] = "uint32"
    (tmp_path / "manifest.json").write_text(json.dumps(content))
    with pytest.raises(ShardError, match="2 bytes per token, the manifest's dtype uint32"):
        make_loader(read_manifest(tmp_path))
