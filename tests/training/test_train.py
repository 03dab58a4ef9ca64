"""The trainer through its command line (in-process): metrics, checkpoints, guards, anneal."""

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO, count_recomputed_blocks, read_metrics, train_args

from refinery.cli import main as refinery
from refinery.config import ConfigError, load_config
from training.anneal import anneal_config, average_checkpoints
from training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from training.config import TrainConfig
from training.data import TokenLoader
from training.model import Transformer
from training.synthetic import write_dataset
from training.train import (
    SpikeGuard,
    StopRequest,
    batch_shape,
    compile_arguments,
    settings_changed,
)


def test_train_writes_metrics_and_checkpoints(tokens, tmp_path):
    out = tmp_path / "run"
    args = train_args(tokens, out, "max_steps=8", "ckpt_every=3", "seed=1", "train.keep_last=2")
    assert refinery([*args, "train.eval_every=4", "train.tensorboard=true"]) == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 9))
    for row in rows:
        for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "data_wait"):
            assert math.isfinite(row[key]), key
        assert 0 <= row["data_wait"] <= 1
    assert "val_loss" in rows[3] and "val_bpb" in rows[7] and "val_loss" not in rows[4]
    assert rows[-1]["loss"] < rows[0]["loss"]  # the learnable bucket is being learnt
    assert [step for step, _ in list_checkpoints(out)] == [6, 8]  # keep_last=2
    newest = resolve_checkpoint(out)
    assert newest.name == "ckpt-8"
    names = {p.name for p in newest.iterdir()}
    assert names == {
        "model.safetensors",
        "optimizer.pt",
        "state.pt",
        "config.json",
        "meta.json",
        "tokenizer.json",
    }
    meta = json.loads((newest / "meta.json").read_text())
    assert meta["step"] == 8 and len(meta["manifest_fingerprint"]) == 64
    assert "embed.weight" in load_file(newest / "model.safetensors")
    assert any((out / "tensorboard").iterdir())
    assert not list(out.glob(".tmp-*"))


def test_a_run_says_what_it_is_and_how_it_ended(tokens, tmp_path, capsys):
    # before the first step: size, batch arithmetic, device, precision; after the last: the
    # figures and the checkpoint. A resumed run says where it picked up.
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=4", "train.micro_batch=4")) == 0
    first, last = capsys.readouterr().out.strip().splitlines()
    assert re.match(r"train: \d+K params, \d+K FLOPs per token; ", first), first
    assert "2,048 tokens per step = 8 x 4 x 64 x 1 rank(s); 4 steps, 8.19K tokens" in first
    assert "cpu, fp32, compile off" in first
    assert last.startswith("train: step 4 done, loss ") and last.endswith(f"{out / 'ckpt-4'}")
    assert "validation loss" in last and "bits/byte" in last
    args = train_args(tokens, out, "max_steps=6", "train.micro_batch=4")
    assert refinery([*args, "--resume"]) == 0
    resumed = capsys.readouterr().out
    assert resumed.startswith(f"resuming from {out / 'ckpt-4'}: step 4, 8,192 tokens seen\n")


def test_activation_checkpointing_trains_the_same_run(tokens, tmp_path, capsys, monkeypatch):
    plain, recomputed = tmp_path / "plain", tmp_path / "recomputed"
    assert refinery(train_args(tokens, plain, "max_steps=4")) == 0
    capsys.readouterr()
    calls = count_recomputed_blocks(monkeypatch)
    args = train_args(tokens, recomputed, "max_steps=4", "train.activation_checkpointing=true")
    assert refinery(args) == 0
    assert "blocks recomputed in the backward" in capsys.readouterr().out.splitlines()[0]
    assert len(calls) == 4 * 2 * 2  # steps x micro-batches x blocks
    for row, reference in zip(read_metrics(recomputed), read_metrics(plain), strict=True):
        for key in ("loss", "grad_norm", "val_loss"):
            if key in reference:
                assert row[key] == pytest.approx(reference[key], rel=1e-6), (row["step"], key)


def test_profiled_steps_leave_a_trace_and_a_table_of_operators(tokens, tmp_path):
    out = tmp_path / "run"
    window = ["train.profile_start=2", "train.profile_steps=2"]
    assert refinery(train_args(tokens, out, "max_steps=5", *window)) == 0
    profiled = [r.get("profiled", False) for r in read_metrics(out)]
    assert profiled == [False, True, True, False, False]
    trace = json.loads((out / "profile" / "rank0-steps2-3.json").read_text())
    assert "aten::mm" in {event.get("name") for event in trace["traceEvents"]}
    assert "aten::mm" in (out / "profile" / "rank0-steps2-3.txt").read_text()
    # a run that ends inside the window still writes what it captured
    short = tmp_path / "short"
    assert refinery(train_args(tokens, short, "max_steps=2", *window)) == 0
    assert sorted(p.name for p in (short / "profile").iterdir()) == [
        "rank0-steps2-2.json",
        "rank0-steps2-2.txt",
    ]


def test_a_resumed_run_profiles_what_is_left_of_the_window(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=2")) == 0
    window = ["train.profile_start=2", "train.profile_steps=2"]
    assert refinery([*train_args(tokens, out, "max_steps=4", *window), "--resume"]) == 0
    assert sorted(p.name for p in (out / "profile").iterdir()) == [
        "rank0-steps3-3.json",
        "rank0-steps3-3.txt",
    ]
    capsys.readouterr()
    early = ["train.profile_start=1", "train.profile_steps=2"]
    assert refinery([*train_args(tokens, out, "max_steps=5", *early), "--resume"]) == 0
    assert "past the profiled steps; nothing is profiled" in capsys.readouterr().err


def test_a_profile_window_after_the_last_step_is_refused(tokens, tmp_path, capsys):
    args = train_args(tokens, tmp_path / "run", "max_steps=2", "train.profile_start=3")
    assert refinery(args) == 2
    assert "train.profile_start=3 is after max_steps=2" in capsys.readouterr().err


def test_bits_per_byte_is_loss_in_bits_over_bytes_per_token(tokens, tmp_path):
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=2")) == 0
    last = read_metrics(out)[-1]
    # synthetic documents count 4 bytes per token
    assert last["val_bpb"] == pytest.approx(last["val_loss"] / math.log(2) / 4)


def test_bits_per_byte_counts_the_bytes_of_the_windows_evaluated(tmp_path):
    """The first eval_tokens may be one domain's documents: English here, then Russian, whose
    letters are two bytes. Their bits per byte divide by their own bytes, not the split's."""
    from train_helpers import english_texts

    from refinery.manifest import read_manifest
    from refinery.tokenizer import load_tokenizer
    from training.data import validation_windows
    from training.pretrained import load_pretrained
    from training.synthetic import write_text_dataset

    russian = ["Кошка видит красный мяч. Собака строит старый дом." * 3] * 40
    tokens = write_text_dataset(
        tmp_path / "tokens", english_texts(200), validation=english_texts(40, seed=9) + russian
    )
    out = tmp_path / "run"
    args = ["max_steps=3", "schedule.warmup_steps=1", "train.eval_every=0", "train.eval_tokens=256"]
    assert refinery(train_args(tokens, out, *args)) == 0
    logged = read_metrics(out)[-1]
    manifest = read_manifest(tokens)
    tokenizer = load_tokenizer(tokens / "tokenizer.json")
    model = load_pretrained(out).model.eval()
    nats = text_bytes = 0.0
    for window in validation_windows(manifest, 64, 256, 0, 1):
        batch = torch.from_numpy(window[None].astype("int64"))
        with torch.no_grad():
            nats += model(batch[:, :-1], batch[:, 1:]).item() * 64
        # English only: every target decodes to whole ASCII characters (EOS to nothing)
        text_bytes += len(tokenizer.decode(window[1:].tolist()).encode("utf-8"))
    assert logged["val_loss"] == pytest.approx(nats / 256, rel=1e-5)
    assert logged["val_bpb"] == pytest.approx(nats / math.log(2) / text_bytes, rel=1e-5)
    split = (
        logged["val_loss"] / math.log(2) * manifest.validation.tokens / manifest.validation.bytes
    )
    assert abs(split - logged["val_bpb"]) > 0.3 * logged["val_bpb"]  # the split's average misled


def test_a_tokens_folder_whose_tokenizer_refinery_refuses_is_refused_at_the_start(tmp_path):
    """Not trained with validation bytes guessed, then refused by every later command."""
    from tokenizers import Tokenizer, processors
    from train_helpers import english_texts

    from refinery.manifest import read_manifest
    from refinery.tokenizer import BOS, TokenizerError
    from training.synthetic import write_text_dataset
    from training.train import validation_token_bytes

    tokens = write_text_dataset(tmp_path / "tokens", english_texts(60))
    manifest = read_manifest(tokens)
    stub = validation_token_bytes(tokens / "missing.json", manifest, 512)
    assert stub.tolist() == [manifest.validation.bytes / manifest.validation.tokens] * 512
    with_bos = Tokenizer.from_file(str(tokens / "tokenizer.json"))
    with_bos.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, 0)]
    )
    with_bos.save(str(tmp_path / "bos.json"))
    with pytest.raises(TokenizerError, match="post-processor adds 1 special token"):
        validation_token_bytes(tmp_path / "bos.json", manifest, 512)


def test_resume_refuses_a_different_manifest(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=2", "ckpt_every=1")) == 0
    other = write_dataset(tmp_path / "other", {"web": 30_000, "wiki": 15_000}, seed=99)
    assert refinery([*train_args(other.root, out, "max_steps=4"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "refusing to resume" in err and "fingerprint" in err
    assert [r["step"] for r in read_metrics(out)] == [1, 2]


def test_truncated_shard_stops_with_a_clear_error(tmp_path, capsys):
    manifest = write_dataset(tmp_path / "tokens", {"web": 8_000})
    shard = manifest.buckets["web"].shards[1].path
    shard.write_bytes(shard.read_bytes()[:-100])
    assert refinery(train_args(manifest.root, tmp_path / "run", "max_steps=2")) == 2
    err = capsys.readouterr().err
    assert str(shard) in err and "truncated" in err


@pytest.mark.parametrize(
    "heads",
    ["model.n_heads=3", "model.n_kv_heads=3", "model.d_model=68"],  # 68 / 4 = 17: odd
)
def test_an_impossible_head_count_is_a_config_error(tokens, tmp_path, capsys, heads):
    assert refinery(train_args(tokens, tmp_path / "run", "max_steps=1", heads)) == 2
    assert "times an even head size, and model.n_heads divide by" in capsys.readouterr().err


def test_nan_loss_stops_naming_step_and_last_checkpoint(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    args = train_args(
        tokens,
        out,
        "max_steps=20",
        "ckpt_every=1",
        "optim.lr=1e30",
        "schedule.warmup_steps=0",
        "optim.grad_clip=0",
    )
    assert refinery(args) == 2
    err = capsys.readouterr().err
    steps = [step for step, _ in list_checkpoints(out)]
    assert steps, "the first step should have produced a checkpoint before diverging"
    failed = steps[-1] + 1
    assert f"step {failed}:" in err and "diverged" in err
    assert f"ckpt-{steps[-1]}" in err
    last = read_metrics(out)[-1]  # the step that stopped it is logged too (it was not)
    assert last["step"] == failed and last["stopped"] == "diverged"


def test_spike_guard_skips_outliers_only_after_history():
    guard = SpikeGuard(window=10, min_history=5, zscore=3.0)
    for loss in (3.0, 3.1, 2.9, 3.05, 2.95):
        assert not guard.is_spike(loss)
        guard.accept(loss)
    assert guard.is_spike(9.0)
    assert not guard.is_spike(3.1)
    assert not SpikeGuard(10, 5, 0.0, [3.0] * 5 + [3.1]).is_spike(100.0)  # disabled


def test_a_spike_step_leaves_the_weights_unchanged(tokens, tmp_path, monkeypatch):
    # force step 4 to look like a spike: the loop must skip that optimizer update only
    calls = []
    monkeypatch.setattr(
        SpikeGuard, "is_spike", lambda self, loss: len(calls.append(loss) or calls) == 4
    )
    out = tmp_path / "run"
    args = train_args(tokens, out, "max_steps=5", "ckpt_every=1", "train.keep_last=0")
    assert refinery(args) == 0
    rows = read_metrics(out)
    assert [bool(r.get("skipped_spike")) for r in rows] == [False, False, False, True, False]
    weights = [load_file(out / f"ckpt-{s}" / "model.safetensors") for s in (3, 4, 5)]
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])
    assert not all(weights[1][k].equal(weights[2][k]) for k in weights[1])
    assert rows[3]["tokens"] == 4 * 2048  # the spike batch is consumed, not retried


def test_a_loss_that_moved_to_a_new_level_stops_the_run(tokens, tmp_path, monkeypatch, capsys):
    """Every step after the third looks like a spike: the guard would skip the rest of the
    run; after max_skips_in_a_row it stops instead, naming the last good checkpoint."""
    calls = []
    monkeypatch.setattr(
        SpikeGuard, "is_spike", lambda self, loss: len(calls.append(loss) or calls) > 3
    )
    out = tmp_path / "run"
    args = ["max_steps=20", "ckpt_every=2", "train.spike.max_skips_in_a_row=4"]
    assert refinery(train_args(tokens, out, *args)) == 2
    err = capsys.readouterr().err
    assert "step 7: 4 updates in a row skipped as loss spikes" in err
    assert f"Last good checkpoint: {out / 'ckpt-6'}" in err
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[-1]["stopped"] == "spikes" and rows[-1]["skipped_spike"]
    # resumed with a limit under the count ckpt-6 restored (3): it stops at once
    lowered = ["max_steps=20", "ckpt_every=2", "train.spike.max_skips_in_a_row=2"]
    assert refinery([*train_args(tokens, out, *lowered), "--resume"]) == 2
    assert "step 7: 4 updates in a row skipped as loss spikes" in capsys.readouterr().err
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3, 4, 5, 6, 7]  # 7 once


def test_anneal_decays_to_zero_on_the_anneal_mixture(tokens, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=4", "ckpt_every=2")) == 0
    out = tmp_path / "anneal"
    args = [
        "anneal",
        "--from",
        str(pre),
        f"data={tokens}",
        f"out={out}",
        "max_steps=6",
        "ckpt_every=2",
        "anneal.average_last=2",
        "train.progress=false",
    ]
    assert refinery(args) == 0
    rows = read_metrics(out)
    lrs = [r["lr"] for r in rows]
    start = torch.load(pre / "ckpt-4" / "state.pt")["scheduler"]["last_lr"]  # in its warmup
    assert lrs[0] == pytest.approx(start) and lrs[-1] == pytest.approx(start / 6)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    config = json.loads((out / "ckpt-6" / "config.json").read_text())
    assert config["loader"]["mixture"] == "anneal" and config["schedule"]["kind"] == "linear"
    # the anneal starts from the pretrained weights, not from a fresh init
    fresh = tmp_path / "fresh"
    assert refinery(train_args(tokens, fresh, "max_steps=1", "loader.mixture=anneal")) == 0
    assert rows[0]["loss"] < read_metrics(fresh)[0]["loss"]
    # on the same tokens, the anneal reads on after the windows pretraining trained on
    read = {
        step: torch.load(run / f"ckpt-{step}" / "state.pt")["loader"]
        for run, step in [(pre, 4), (out, 6)]
    }
    web, wiki = read[4]["consumed"]["web"], read[4]["consumed"]["wiki"]  # 32 windows a step:
    assert read[6]["consumed"] == {"web": web + 6 * 32, "wiki": wiki}  # wiki carried through
    averaged = load_file(out / "averaged" / "model.safetensors")
    a, b = (load_file(out / f"ckpt-{s}" / "model.safetensors") for s in (4, 6))
    for name, tensor in averaged.items():
        assert tensor.allclose((a[name] + b[name]) / 2)
    assert f"averaged the last 2 checkpoints: {out / 'averaged'}" in capsys.readouterr().out
    # an average is weights only: no optimizer or data position to anneal on from
    again = ["anneal", "--from", str(out / "averaged"), f"data={tokens}", f"out={tmp_path / 'x'}"]
    assert refinery([*again, "max_steps=2"]) == 2
    assert "is an average of checkpoints, weights only" in capsys.readouterr().err


def test_an_anneal_on_other_mixtures_over_the_same_shards_reads_on(tokens, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=2", "ckpt_every=2")) == 0
    other = tmp_path / "tokens"
    shutil.copytree(tokens, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["mixtures"]["anneal"] = {"web": 2.0, "wiki": 1.0}  # other weights, same shards
    (other / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(pre), f"data={other}", f"out={out}", "max_steps=1"]
    ignored = ["schedule.kind=cosine", "loader.mixture=pretrain"]
    assert refinery([*args, "train.progress=false", *ignored]) == 0
    before = torch.load(pre / "ckpt-2" / "state.pt")["loader"]["consumed"]
    after = torch.load(out / "ckpt-1" / "state.pt")["loader"]["consumed"]
    assert all(after[b] >= before[b] for b in before)  # each bucket goes on, not from 0
    assert sum(after.values()) == sum(before.values()) + 32
    err = capsys.readouterr().err
    assert "schedule.kind ignored" in err and "read from their start" not in err
    assert "loader.mixture= ignored: the anneal reads the manifest's mixture named by" in err
    assert json.loads((out / "ckpt-1" / "config.json").read_text())["loader"]["mixture"] == "anneal"
    meta = json.loads((out / "ckpt-1" / "meta.json").read_text())
    assert meta["init_from"] == "../pre/ckpt-2"  # from the run folder: any cwd, a moved copy


def test_an_anneal_decays_from_the_lr_its_source_stopped_at(tokens, tmp_path, capsys):
    """OLMo 2 and Llama 3 anneal from where pretraining's schedule stopped: a cosine run cut
    short goes on down to zero, not back up to its peak; optim.lr= sets another start."""
    pre = tmp_path / "pre"
    assert (
        refinery(train_args(tokens, pre, "max_steps=4", "optim.lr=0.01", "schedule.warmup_steps=0"))
        == 0
    )
    stopped = torch.load(pre / "ckpt-4" / "state.pt")["scheduler"]["last_lr"]
    assert stopped < 0.005
    args = ["anneal", "--from", str(pre), f"data={tokens}", "max_steps=2", "train.progress=false"]
    assert refinery([*args, f"out={tmp_path / 'anneal'}"]) == 0
    lrs = [m["lr"] for m in read_metrics(tmp_path / "anneal")]
    assert lrs == pytest.approx([stopped, stopped / 2])
    said = capsys.readouterr().err
    assert f"anneal: lr {stopped:g} -> 0 over 2 steps (where {pre / 'ckpt-4'} stopped" in said
    assert "of its peak 0.01; optim.lr= starts elsewhere)" in said
    assert refinery([*args, f"out={tmp_path / 'warm'}", "optim.lr=0.01"]) == 0
    lrs = [m["lr"] for m in read_metrics(tmp_path / "warm")]
    assert lrs == pytest.approx([0.01, 0.005])
    assert "so this warms the model back up" in capsys.readouterr().err


def test_an_anneal_reads_on_where_each_bucket_stopped(tmp_path, capsys):
    # pretraining reads only `web`, past its cap; the anneal adds `wiki`; a second anneal
    # returns to `web` alone
    mixtures = {"pretrain": {"web": 1.0}, "anneal": {"web": 1.0, "wiki": 1.0}}
    data = write_dataset(
        tmp_path / "tokens", {"web": 4_000, "wiki": 6_000}, max_epochs=1.0, mixtures=mixtures
    )
    pre, first, second = (tmp_path / name for name in ("pre", "first", "second"))
    assert refinery(train_args(data.root, pre, "max_steps=3", "ckpt_every=3")) == 0
    assert "step 3: every bucket of mixture 'pretrain'" in capsys.readouterr().err

    def anneal(source, out, *extra):
        args = ["anneal", "--from", str(source), f"data={data.root}", f"out={out}"]
        assert refinery([*args, "max_steps=1", "train.progress=false", *extra]) == 0
        return torch.load(out / "ckpt-1" / "state.pt")["loader"]["consumed"]

    before = torch.load(pre / "ckpt-3" / "state.pt")["loader"]["consumed"]
    assert before == {"web": 96, "wiki": 0}
    after = anneal(pre, first)
    # `web` is past its cap, `wiki` is not: only `wiki` is read, and nothing is repeated
    assert after == {"web": 96, "wiki": 32}
    captured = capsys.readouterr()
    assert "reading on where its data stopped" in captured.out
    # a bucket read out before the anneal's first step was never said (28% of a mixture)
    assert (
        f"{pre / 'ckpt-3'} already read web (50.0%) of mixture 'anneal' max_epochs=1 times: "
        "they are not sampled, and the other buckets share their weight" in captured.err
    )
    assert anneal(first, second, "anneal.mixture=pretrain") == {"web": 128, "wiki": 32}
    # every bucket of the mixture read out: sampling goes on past the cap, said at step 1
    err = capsys.readouterr().err
    assert "already read" not in err and "step 1: every bucket of mixture 'pretrain'" in err
    # a bucket the source read that the data no longer has (renamed) was not named
    renamed = write_dataset(
        tmp_path / "renamed",
        {"web.new": 4_000, "wiki": 6_000},
        max_epochs=1.0,
        mixtures={"pretrain": {"web.new": 1.0}, "anneal": {"web.new": 1.0, "wiki": 1.0}},
    )
    args = ["anneal", "--from", str(pre), f"data={renamed.root}", f"out={tmp_path / 'renamed-run'}"]
    assert refinery([*args, "max_steps=1", "train.progress=false"]) == 0
    assert f"{renamed.root} has no buckets ['web'], which {pre / 'ckpt-3'} read" in (
        capsys.readouterr().err
    )
    # another seed shuffles each bucket anew: positions from the start of the new shuffle
    reseeded = anneal(pre, tmp_path / "reseeded", "seed=7")
    assert reseeded["web"] < 32 and reseeded["web"] + reseeded["wiki"] == 32
    assert f"seed=7 is not {pre / 'ckpt-3'}'s seed=0: buckets ['web'] are read from their" in (
        capsys.readouterr().err
    )


def test_the_run_says_what_its_data_cannot_give(tmp_path, capsys):
    # a bucket of the mixture too small for one window, a validation split too small for one
    mixtures = {"pretrain": {"web": 3.0, "scraps": 1.0}}
    data = write_dataset(
        tmp_path / "tokens", {"web": 20_000, "scraps": 40}, validation_tokens=40, mixtures=mixtures
    )
    assert data.buckets["scraps"].tokens < 513 and data.validation.tokens < 513
    out = tmp_path / "run"
    longer = ["model.seq_len=512", "train.micro_batch=4"]  # 4 windows a step
    assert refinery(train_args(data.root, out, "max_steps=2", *longer)) == 0
    err = capsys.readouterr().err
    assert (
        f"{data.root}: bucket 'scraps' (25.0% of mixture 'pretrain') holds fewer than "
        "seq_len + 1 = 513 tokens: it is never sampled" in err
    )
    assert "the validation split holds" in err and "no val_loss or val_bpb will be logged" in err
    assert "val_loss" not in read_metrics(out)[-1]
    consumed = torch.load(out / "ckpt-2" / "state.pt")["loader"]["consumed"]
    assert consumed == {"scraps": 0, "web": 8}


def test_a_bucket_max_epochs_caps_at_no_window_is_said(tmp_path, capsys):
    """max_epochs=0.5 of a one-window bucket rounds to none: it went unsampled unsaid."""
    mixtures = {"pretrain": {"web": 3.0, "tiny": 1.0}}
    data = write_dataset(
        tmp_path / "tokens", {"web": 20_000, "tiny": 600}, mixtures=mixtures, max_epochs=0.5
    )
    out = tmp_path / "run"
    longer = ["model.seq_len=512", "train.micro_batch=4"]
    assert refinery(train_args(data.root, out, "max_steps=1", *longer)) == 0
    assert (
        f"{data.root}: bucket 'tiny' (25.0% of mixture 'pretrain') holds 1 window(s) of "
        "seq_len + 1, which max_epochs=0.5 caps at none" in capsys.readouterr().err
    )


def test_repeating_data_past_max_epochs_is_said_at_the_step_that_does_it(tmp_path, capsys):
    data = write_dataset(tmp_path / "tokens", {"web": 6_000}, max_epochs=1.0)
    loader = TokenLoader(data, "pretrain", 64, 32, 2, 16, seed=0)
    cursor, first_past = loader.initial_cursor(), None
    for step in range(10):
        batch = loader.make_batch(step, cursor)
        cursor = batch.cursor
        if first_past is None and batch.past_cap:
            first_past = step + 1  # as metrics.jsonl counts steps
    assert first_past and first_past > 1
    # the loader prepares steps ahead of the run; only the steps trained count
    before = train_args(data.root, tmp_path / "before", f"max_steps={first_past - 1}")
    assert refinery(before) == 0
    assert "max_epochs" not in capsys.readouterr().err
    assert refinery(train_args(data.root, tmp_path / "past", f"max_steps={first_past + 1}")) == 0
    err = capsys.readouterr().err
    assert err.count("max_epochs") == 1
    assert (
        f"step {first_past}: every bucket of mixture 'pretrain' has been read max_epochs=1" in err
    )


def test_a_tokens_folder_without_its_tokenizer_is_refused(tmp_path, capsys):
    data = write_dataset(tmp_path / "tokens", {"web": 6_000})
    data.tokenizer_path.unlink()
    assert refinery(train_args(data.root, tmp_path / "run", "max_steps=1")) == 2
    err = capsys.readouterr().err
    assert f"{data.tokenizer_path}: tokenizer file named by manifest.json is missing" in err
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("ckpt-*"))


def test_a_mixture_the_manifest_lacks_is_refused_before_out_is_made(tokens, tmp_path, capsys):
    """It was found by the loader, after OUT was locked (a `.lock` left behind) and the model
    and optimizer were built."""
    args = train_args(tokens, tmp_path / "run", "max_steps=1", "loader.mixture=nope")
    assert refinery(args) == 2
    assert "no mixture 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_moe_preset_trains(tokens, tmp_path):
    out = tmp_path / "moe"
    moe = str(train_args(tokens, out)[2]).replace("tiny.yaml", "moe-tiny.yaml")
    args = [
        "train",
        "--config",
        moe,
        f"data={tokens}",
        f"out={out}",
        "max_steps=3",
        "train.progress=false",
        "train.tensorboard=false",
    ]
    assert refinery(args) == 0
    rows = read_metrics(out)
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows)
    # router collapse shows in the log: balancing loss (1 when balanced) and capacity drops
    assert all(0.5 < r["moe_balance_loss"] < 4 and 0 <= r["moe_dropped"] < 1 for r in rows)
    config = json.loads((out / "ckpt-3" / "config.json").read_text())
    assert config["model"]["moe"]["num_experts"] == 4


def test_how_experts_train_may_change_on_resume_or_anneal_but_not_the_model(tmp_path):
    """capacity_factor and aux_loss_weight shape no weight (an anneal may go dropless);
    top_k changes what the weights compute."""
    config = dataclasses.asdict(TrainConfig())
    source = save_checkpoint(tmp_path / "pre", 5, {}, {}, {}, config, {}, None, keep_last=0)
    cfg = TrainConfig()
    cfg.model.moe.capacity_factor, cfg.model.moe.aux_loss_weight = 0.0, 0.02
    assert settings_changed(source, cfg) == [
        "model.moe.aux_loss_weight: 0.01 -> 0.02",
        "model.moe.capacity_factor: 1.25 -> 0.0",
    ]
    cfg.model.moe.top_k = 1
    with pytest.raises(CheckpointError, match=r"different model \(model.moe.top_k: 2 -> 1\)"):
        settings_changed(source, cfg)


def test_anneal_refuses_a_different_tokenizer(tokens, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=1")) == 0
    other = write_dataset(tmp_path / "other", {"web": 10_000}, vocab_size=300)
    args = [
        "anneal",
        "--from",
        str(pre / "ckpt-1"),
        f"data={other.root}",
        f"out={tmp_path / 'anneal'}",
        "max_steps=2",
        "anneal.mixture=pretrain",
    ]
    assert refinery(args) == 2
    assert "tokenizer sha256" in capsys.readouterr().err


def test_resume_without_a_checkpoint_starts_fresh(tokens, tmp_path):
    out = tmp_path / "run"
    assert refinery([*train_args(tokens, out, "max_steps=2"), "--resume"]) == 0
    assert [r["step"] for r in read_metrics(out)] == [1, 2]


def test_a_fresh_run_refuses_an_out_folder_with_checkpoints(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    assert refinery(train_args(tokens, out, "max_steps=1")) == 0
    assert refinery(train_args(tokens, out, "max_steps=2")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert [r["step"] for r in read_metrics(out)] == [1]


def anneal_defaults(tmp_path: Path, *overrides: str, layer: dict | None = None) -> TrainConfig:
    """The anneal config of a checkpoint that holds only the default config."""
    config = dataclasses.asdict(TrainConfig())
    source = save_checkpoint(tmp_path / "pre", 5, {}, {}, {}, config, {}, None, keep_last=0)
    return anneal_config(source, [f"out={tmp_path / 'anneal'}", *overrides], layer)


def test_an_anneal_of_an_anneal_takes_neither_its_budget_nor_its_averaging(tmp_path, capsys):
    """The source's anneal.tokens overrode the max_steps asked for; its average_last
    refused a run that writes one checkpoint."""
    config = dataclasses.asdict(TrainConfig())
    config["anneal"].update(tokens=40960, average_last=3, mixture="hq", decay="1-sqrt")
    meta = {"init_from": str(tmp_path / "pre" / "ckpt-9")}
    source = save_checkpoint(tmp_path / "anneal", 5, {}, {}, {}, config, meta, None, keep_last=0)
    cfg = anneal_config(source, [f"out={tmp_path / 'again'}", "max_steps=6"])
    assert (cfg.max_steps, cfg.anneal.tokens, cfg.anneal.average_last) == (6, 0, 0)
    assert (cfg.anneal.mixture, cfg.schedule.kind) == ("hq", "1-sqrt")  # settings, kept
    assert capsys.readouterr().err == ""
    # a pretraining run's config may plan its anneal: that plan is the base
    meta = {"init_from": None}  # as the trainer writes it for a run from scratch
    source = save_checkpoint(tmp_path / "pre", 9, {}, {}, {}, config, meta, None, keep_last=0)
    cfg = anneal_config(source, [f"out={tmp_path / 'planned'}", "ckpt_every=2"])
    assert (cfg.anneal.tokens, cfg.anneal.average_last, cfg.max_steps) == (40960, 3, 10)


def test_anneal_refuses_two_different_tokens_folders(tmp_path, capsys):
    config = dataclasses.asdict(TrainConfig())
    save_checkpoint(tmp_path / "pre", 5, {}, {}, {}, config, {}, None, keep_last=0)
    args = ["anneal", "--from", str(tmp_path / "pre"), "--data", "a", "data=b"]
    assert refinery([*args, f"out={tmp_path / 'x'}"]) == 2
    assert "--data a and data=b name two tokens folders" in capsys.readouterr().err
    args = ["anneal", "--from", str(tmp_path / "pre"), "--data", "a", "data=./a/"]
    assert refinery([*args, f"out={tmp_path / 'x'}"]) == 2  # the same folder: on to the data
    assert "two tokens folders" not in capsys.readouterr().err


def test_anneal_token_budget_sets_the_steps(tmp_path, capsys):
    cfg = anneal_defaults(tmp_path, "anneal.tokens=40960", "train.global_batch_tokens=4096")
    assert cfg.max_steps == 10 and capsys.readouterr().err == ""
    cfg = anneal_defaults(tmp_path, "anneal.tokens=30000", "train.global_batch_tokens=4096")
    assert cfg.max_steps == 7
    assert "anneal.tokens=30000 is 7 whole steps of 4096 tokens: 28672" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="anneal.tokens=1000 is less than one step"):
        anneal_defaults(tmp_path, "anneal.tokens=1000", "train.global_batch_tokens=4096")
    assert (cfg.schedule.kind, cfg.schedule.warmup_steps, cfg.schedule.min_lr_ratio) == (
        "linear",
        0,
        0.0,
    )


@pytest.mark.parametrize("spelt", ["optim.lr =0.002", "optim={lr: 0.002}"])
def test_anneal_settings_are_found_however_they_are_spelt(tmp_path, capsys, spelt):
    cfg = anneal_defaults(tmp_path, spelt, "schedule.kind =cosine")
    assert cfg.optim.lr == 0.002  # not the source's last lr
    assert "schedule.kind ignored" in capsys.readouterr().err


def test_an_anneal_config_file_lies_between_the_source_config_and_the_overrides(tmp_path, capsys):
    layer = {"anneal": {"decay": "1-sqrt", "tokens": 40960}, "optim": {"lr": 0.002}}
    layer["train"] = {"global_batch_tokens": 4096}
    cfg = anneal_defaults(tmp_path, "optim.lr=0.003", layer=layer)
    assert (cfg.schedule.kind, cfg.max_steps, cfg.optim.lr) == ("1-sqrt", 10, 0.003)
    assert cfg.model == TrainConfig().model  # the source's, untouched by the file
    cfg = anneal_defaults(tmp_path, layer={"schedule": {"kind": "cosine"}})
    assert cfg.schedule.kind == "linear"
    assert "schedule.kind ignored" in capsys.readouterr().err


def test_anneal_names_its_config_file_with_a_bad_key(tokens, tmp_path, capsys):
    source = tmp_path / "pre"
    assert refinery(train_args(tokens, source, "max_steps=1")) == 0
    config = tmp_path / "anneal.yaml"
    config.write_text("anneal:\n  decay: linear\n  averge_last: 2\n")
    args = ["anneal", "--from", str(source), "--config", str(config), f"out={tmp_path / 'a'}"]
    assert refinery(args) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'anneal.averge_last'" in err and str(config) in err


def test_truncate_metrics_drops_later_and_torn_lines(tmp_path):
    from training.train import truncate_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}\n{"step": 3, "lo')
    truncate_metrics(path, 1)
    assert path.read_text() == '{"step": 1, "loss": 2.0}\n'


def test_anneal_falls_back_to_pretrain_without_an_anneal_mixture(tmp_path, capsys):
    data = write_dataset(tmp_path / "tokens", {"web": 10_000}, mixtures={"pretrain": {"web": 1}})
    pre = tmp_path / "pre"
    assert refinery(train_args(data.root, pre, "max_steps=1")) == 0
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(pre), f"data={data.root}", f"out={out}", "max_steps=2"]
    assert refinery([*args, "train.progress=false"]) == 0
    assert "no `anneal` mixture" in capsys.readouterr().err
    config = json.loads((out / "ckpt-2" / "config.json").read_text())
    assert config["loader"]["mixture"] == "pretrain"


@pytest.mark.parametrize("mode", ["default", "coordinate-descent", "max-autotune"])
def test_compile_modes_name_what_this_torch_knows(mode):
    # torch.compile checks a mode or option only when it first compiles (on the GPU node)
    import torch._inductor

    arguments = compile_arguments(mode)
    assert set(arguments) <= {"mode", "options"}
    assert set(arguments.get("options", {})) <= set(torch._inductor.list_options())
    if "mode" in arguments:
        assert arguments["mode"] in torch._inductor.list_mode_options()


PRESET_PARAMS = {"gpt2-124m": 124e6, "350m": 350e6, "1b": 1.0e9}


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf" / "train").glob("*.yaml")))
def test_presets_load_build_and_are_the_size_they_say(name):
    cfg = load_config(TrainConfig, REPO / "conf" / "train" / f"{name}.yaml")
    cfg.model.vocab_size = cfg.model.vocab_size or 256  # tiny ones take the manifest's
    batch_shape(cfg, world=1)  # the global batch divides into micro-batches
    with torch.device("meta"):
        params = Transformer(cfg.model).num_params()
    if name in PRESET_PARAMS:
        assert abs(params / PRESET_PARAMS[name] - 1) < 0.1, params


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["max_steps=6", "anneal.average_last=3"], "ckpt_every=0 over max_steps=6 writes 1"),
        (["max_steps=6", "ckpt_every=4", "anneal.average_last=3"], "set ckpt_every <= 2"),
        (["ckpt_every=1", "anneal.average_last=2", "train.save_final=false"], "save_final"),
        (["max_steps=2", "ckpt_every=1", "anneal.average_last=3"], "writes at most 2 \\(one per"),
    ],
)
def test_anneal_refuses_an_average_its_checkpoints_cannot_supply(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        anneal_defaults(tmp_path, *overrides)
    assert anneal_defaults(tmp_path, "max_steps=6", "ckpt_every=2", "anneal.average_last=3")


def test_a_preempted_anneal_averages_only_once_resumed_to_the_end(
    tokens, tmp_path, monkeypatch, capsys
):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=2")) == 0
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(pre), f"data={tokens}", f"out={out}", "max_steps=4"]
    args += ["ckpt_every=2", "anneal.average_last=2", "train.progress=false"]
    with monkeypatch.context() as patch:  # SIGTERM arrived before the first step ended
        patch.setattr(StopRequest, "agreed", lambda self, env: True)
        assert refinery(args) == 0
    assert "stopped at step 1 of 4; not averaged yet" in capsys.readouterr().out
    assert not (out / "averaged").exists()
    assert refinery([*args, "--resume"]) == 0
    meta = json.loads((out / "averaged" / "meta.json").read_text())
    assert meta["averaged_steps"] == [2, 4]
    # asking for more checkpoints than the run holds is an error, not a smaller mean
    with pytest.raises(
        CheckpointError, match=r"holds 2 checkpoints of its schedule \(steps \[2, 4\]\)"
    ):
        average_checkpoints(out, 3)


def test_an_anneal_resumed_with_another_batch_keeps_its_token_budget(tokens, tmp_path, capsys):
    """anneal.tokens was counted afresh in steps of the new batch: twice the batch stopped
    at "past max_steps" with advice it ignored; half the batch overshot the budget."""
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=2")) == 0
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(pre), f"data={tokens}", f"out={out}", "ckpt_every=1"]
    args += ["anneal.tokens=8192", "anneal.average_last=3", "train.keep_last=0"]  # 4 steps
    assert refinery(args) == 0
    for step in (3, 4):  # as if stopped after step 2
        shutil.rmtree(out / f"ckpt-{step}")
    # 3 steps in all now: the averaging was checked against 2 (the budget counted afresh)
    assert refinery([*args, "train.global_batch_tokens=4096", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "the rest is 1 steps of 4096 tokens (max_steps=3)" in err
    assert " -> 0 over 3 steps" in err.split("the rest is")[1]  # said after the budget
    assert list_checkpoints(out)[-1][0] == 3
    assert read_metrics(out)[-1]["tokens"] == 8192
    assert json.loads((out / "averaged" / "meta.json").read_text())["averaged_steps"] == [1, 2, 3]


def test_a_preemption_checkpoint_changes_neither_keep_last_nor_the_average(
    tokens, tmp_path, monkeypatch
):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=2")) == 0
    args = ["anneal", "--from", str(pre), f"data={tokens}", "max_steps=6", "ckpt_every=2"]
    args += ["anneal.average_last=2", "train.keep_last=2", "train.progress=false"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert refinery([*args, f"out={whole}"]) == 0
    calls = iter(range(1, 7))
    with monkeypatch.context() as patch:  # SIGTERM during step 5, between two scheduled saves
        patch.setattr(StopRequest, "agreed", lambda self, env: next(calls) == 5)
        assert refinery([*args, f"out={stopped}"]) == 0
    assert [step for step, _ in list_checkpoints(stopped)] == [2, 4, 5]
    assert refinery([*args, f"out={stopped}", "--resume"]) == 0
    assert [step for step, _ in list_checkpoints(stopped)] == [4, 6]  # ckpt-5 was temporary
    for run in (whole, stopped):
        assert json.loads((run / "averaged" / "meta.json").read_text())["averaged_steps"] == [4, 6]
    averaged = [load_file(run / "averaged" / "model.safetensors") for run in (whole, stopped)]
    assert all(torch.equal(averaged[0][k], averaged[1][k]) for k in averaged[0])


def test_with_keep_last_0_a_preemption_checkpoint_goes_once_a_later_one_is_written(tmp_path):
    def save(step: int, preemption: bool = False):
        meta = {"preemption": True} if preemption else {}
        save_checkpoint(tmp_path, step, {}, {}, {}, {}, meta, None, keep_last=0)

    save(2), save(3, preemption=True)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [2, 3]  # --resume needs ckpt-3
    save(4)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [2, 4]  # every scheduled one


def test_a_bucket_reaching_its_epoch_cap_is_said_when_it_does(tmp_path, capsys):
    mixtures = {"pretrain": {"web": 1.0, "wiki": 1.0}}
    data = write_dataset(
        tmp_path / "tokens", {"web": 4_000, "wiki": 60_000}, max_epochs=1.0, mixtures=mixtures
    )
    assert refinery(train_args(data.root, tmp_path / "run", "max_steps=6")) == 0
    err = capsys.readouterr().err
    said = "['web'] read max_epochs=1 times; its weight goes to the other buckets of mixture"
    assert f"{said} 'pretrain' until they reach the cap too" in err
    assert "every bucket of mixture" not in err


def test_train_says_it_ignores_the_anneal_settings(tokens, tmp_path, capsys):
    args = train_args(tokens, tmp_path / "run", "max_steps=1", "anneal.average_last=3")
    assert refinery([*args, "train.progress=false"]) == 0
    assert "train: the anneal.* settings are ignored" in capsys.readouterr().err


def test_post_training_sections_set_for_another_command_are_named():
    from refinery.config import load_config, set_sections
    from training.posttrain import PostTrainConfig

    cfg = load_config(PostTrainConfig, None, ["dpo.beta=5", "sft.supervise=last"])
    assert set_sections(cfg, ("rm", "dpo")) == ["dpo"]


def train_from(source: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--from", str(source), *train_args(data, out, *extra)[1:]]


def consumed(ckpt: Path) -> int:
    return sum(torch.load(ckpt / "state.pt")["loader"]["consumed"].values())


def test_train_from_a_checkpoint_starts_from_its_weights_with_a_new_optimizer(tokens, tmp_path):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=4")) == 0
    out = tmp_path / "more"
    # a tiny lr leaves the weights as they came: those of the checkpoint, not a fresh init;
    # another seed shuffles each bucket otherwise, so it reads them from their start
    assert refinery(train_from(pre, tokens, out, "optim.lr=1e-12", "max_steps=2", "seed=7")) == 0
    then, now = (load_file(p / "model.safetensors") for p in (pre / "ckpt-4", out / "ckpt-2"))
    assert all(torch.allclose(then[name], now[name], rtol=0, atol=1e-9) for name in then)
    state = torch.load(out / "ckpt-2" / "optimizer.pt")["state"]
    assert {float(s["step"]) for s in state.values()} == {2.0}  # AdamW starts afresh
    assert consumed(out / "ckpt-2") == 2 * 32
    meta = json.loads((out / "ckpt-2" / "meta.json").read_text())
    assert meta["weights_from"] == "../pre/ckpt-4" and meta["init_from"] is None


def test_a_run_from_a_checkpoint_reads_on_and_resumes_with_or_without_from(tokens, tmp_path):
    pre = tmp_path / "pre"  # a model tiny.yaml does not give (it leaves ffn_hidden unset)
    assert refinery(train_args(tokens, pre, "max_steps=2", "model.ffn_hidden=128")) == 0
    out = tmp_path / "more"
    assert refinery(train_from(pre, tokens, out, "max_steps=2")) == 0
    assert consumed(out / "ckpt-2") == consumed(pre / "ckpt-2") + 2 * 32  # same seed: reads on
    lrs = [m["lr"] for m in read_metrics(out)]
    assert lrs == pytest.approx([3e-3 * s / 5 for s in (1, 2)])  # tiny.yaml's warmup, anew
    assert refinery([*train_from(pre, tokens, out, "max_steps=3"), "--resume"]) == 0
    # without --from, the model is out's own checkpoint's, not tiny.yaml's default ffn_hidden
    assert refinery([*train_args(tokens, out, "max_steps=4"), "--resume"]) == 0
    meta = json.loads((out / "ckpt-4" / "meta.json").read_text())
    assert meta["weights_from"] == "../pre/ckpt-2"  # kept by the resume that did not name it
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4]


def test_a_run_from_a_checkpoint_reads_from_the_start_what_its_source_did_not_read(
    tmp_path, capsys
):
    data = tmp_path / "tokens"
    write_dataset(data, {"web": 30_000, "wiki": 15_000}, seed=3)
    pre = tmp_path / "pre"
    assert refinery(train_args(data, pre, "max_steps=1")) == 0
    # the folder made again in place: the same shard names and tokenizer, other documents
    shutil.rmtree(data)
    write_dataset(data, {"web": 30_000, "wiki": 15_000}, seed=11)
    out = tmp_path / "more"
    assert refinery(train_from(pre, data, out, "max_steps=1")) == 0
    assert consumed(out / "ckpt-1") == 32
    assert "buckets ['web', 'wiki'] are read from their start" in capsys.readouterr().err


def test_train_from_refuses_another_model_and_a_post_training_checkpoint(tokens, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=1")) == 0
    out = tmp_path / "more"
    assert refinery(train_from(pre, tokens, out, "model.n_layers=3")) == 2
    assert "holds another model than this command gives (model.n_layers: 2 there, 3 here)" in (
        capsys.readouterr().err
    )
    # MoE's training settings shape no weight, nor does an empty section; a resume from
    # another checkpoint is refused
    moe = ["model.moe.capacity_factor=2", "model.moe=null"]
    assert refinery(train_from(pre, tokens, out, "max_steps=1", *moe)) == 0
    assert refinery(train_from(out, tokens, tmp_path / "x", "max_steps=1")) == 0
    assert refinery([*train_from(out, tokens, pre, "max_steps=2"), "--resume"]) == 2
    assert "did not start from a checkpoint (weights_from is not recorded)" in (
        capsys.readouterr().err
    )
    assert refinery(["anneal", "--from", str(pre), f"data={tokens}", f"out={out}", "--resume"]) == 2
    assert f"{out} holds a `train --from` run of {pre / 'ckpt-1'}, not an anneal" in (
        capsys.readouterr().err
    )
    other = tmp_path / "other"  # another tokenizer, with a larger vocabulary: named as such
    write_dataset(other, {"web": 30_000}, vocab_size=1024)
    assert refinery(train_from(pre, other, tmp_path / "z", "max_steps=1")) == 2
    assert f"{pre / 'ckpt-1'} used tokenizer sha256" in capsys.readouterr().err
    sft = tmp_path / "sft"
    shutil.copytree(pre / "ckpt-1", sft)
    meta = json.loads((sft / "meta.json").read_text())
    (sft / "meta.json").write_text(json.dumps({**meta, "method": "sft"}))
    assert refinery(train_from(sft, tokens, tmp_path / "y", "max_steps=1")) == 2
    assert "is a sft checkpoint: train --from starts from a pretraining" in capsys.readouterr().err


def test_train_from_an_average_of_checkpoints_takes_its_weights(tokens, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert refinery(train_args(tokens, pre, "max_steps=1")) == 0
    averaged = tmp_path / "anneal" / "averaged"  # as an anneal writes it: weights, config,
    averaged.mkdir(parents=True)  # meta and tokenizer
    for name in ("model.safetensors", "config.json", "meta.json", "tokenizer.json"):
        shutil.copy(pre / "ckpt-1" / name, averaged / name)
    out = tmp_path / "more"
    assert refinery(train_from(averaged, tokens, out, "max_steps=1")) == 0
    assert consumed(out / "ckpt-1") == 32
    said = capsys.readouterr().out
    assert f"lr schedule from step 0) of {averaged}\n" in said  # and no data to read on from
