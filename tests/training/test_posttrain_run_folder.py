"""Post-training, export and eval against run folders they must not touch or cannot use: the
source run, another method's run, a finished run, a file (clear errors, exit status 2)."""

import shutil

import pytest
import torch
from posttrain_helpers import posttrain_args
from train_helpers import REPO, read_metrics, train_args

from refinery.cli import main as refinery

SFT_DATA = REPO / "conf" / "posttrain" / "demo_sft.jsonl"
PAIRS = REPO / "conf" / "posttrain" / "demo_preferences.jsonl"


@pytest.fixture(scope="module")
def sft_run(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "sft"
    assert refinery(sft(pretrained, out, "max_steps=2")) == 0
    return out


def sft(source, out, *extra: str) -> list[str]:
    return posttrain_args("sft", source, SFT_DATA, out, *extra)


@pytest.fixture
def source_copy(pretrained, tmp_path):
    return shutil.copytree(pretrained, tmp_path / "pre")


def test_sft_never_writes_into_the_run_it_starts_from(source_copy, capsys):
    before = sorted(p.name for p in source_copy.iterdir())
    for out in (source_copy, source_copy / "ckpt-30"):
        for resume in ([], ["--resume"]):  # named as the source either way, not "pass --resume"
            assert refinery([*sft(source_copy, out, "max_steps=32"), *resume]) == 2
            assert "the checkpoint read from" in capsys.readouterr().err
    assert refinery(sft(source_copy, source_copy / "sft", "max_steps=1")) == 2
    assert f"inside {source_copy}, the run read from" in capsys.readouterr().err
    assert sorted(p.name for p in source_copy.iterdir()) == before


def test_a_resume_continues_only_its_own_method_and_source(
    pretrained, source_copy, sft_run, tokens, tmp_path, capsys
):
    out = shutil.copytree(sft_run, tmp_path / "sft")
    dpo = posttrain_args("dpo", pretrained, PAIRS, out, "max_steps=4")
    assert refinery([*dpo, "--resume"]) == 2
    assert "holds a sft run, not dpo" in capsys.readouterr().err
    assert refinery([*sft(source_copy, out, "max_steps=4"), "--resume"]) == 2
    assert f"not {source_copy / 'ckpt-30'}" in capsys.readouterr().err
    assert refinery([*train_args(tokens, out, "max_steps=4"), "--resume"]) == 2
    assert "holds a sft run, not pretraining" in capsys.readouterr().err
    assert [r["step"] for r in read_metrics(out)] == [1, 2]


def test_an_sft_resume_reports_changes_and_knows_when_it_is_done(
    pretrained, sft_run, tmp_path, capsys
):
    out = shutil.copytree(sft_run, tmp_path / "sft")
    assert refinery([*sft(pretrained, out, "max_steps=2"), "--resume"]) == 0
    assert "is at max_steps=2 already: nothing to train" in capsys.readouterr().out
    assert refinery([*sft(pretrained, out, "max_steps=1"), "--resume"]) == 2
    assert "past max_steps=1" in capsys.readouterr().err
    assert refinery([*sft(pretrained, out, "max_steps=3", "optim.lr=1e-4"), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming with changed settings: max_steps: 2 -> 3; optim.lr:" in err
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]
    assert refinery([*sft(pretrained, out, "max_steps=4", "seed=1"), "--resume"]) == 2
    assert "with seed: 0 -> 1: the held-out split and the batches follow" in (
        capsys.readouterr().err
    )
    assert refinery([*sft(pretrained, out, "max_steps=4", "batch_size=8"), "--resume"]) == 2
    assert "with batch_size: " in capsys.readouterr().err


def test_an_sft_resume_that_raises_the_learning_rate_says_so(pretrained, tmp_path, capsys):
    """A longer max_steps moves the cosine back up its curve: pretraining said so, not SFT."""
    out, warm = tmp_path / "sft", "schedule.warmup_steps=0"
    assert refinery(sft(pretrained, out, "max_steps=3", warm)) == 0
    assert refinery([*sft(pretrained, out, "max_steps=12", warm), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resume: step 4 trains at lr" in err and "start a new run --from" in err


def test_an_sft_resume_refuses_other_data_and_follows_a_moved_copy(
    pretrained, sft_run, tmp_path, capsys
):
    out = shutil.copytree(sft_run, tmp_path / "sft")
    other = tmp_path / "other.jsonl"
    other.write_text(SFT_DATA.read_text().replace("the", "a"))
    resumed = posttrain_args("sft", pretrained, other, out, "max_steps=3")
    assert refinery([*resumed, "--resume"]) == 2
    assert f"{other} is not the data {out} was trained on ({SFT_DATA}" in capsys.readouterr().err
    moved = shutil.copy(SFT_DATA, tmp_path / "moved.jsonl")
    assert (
        refinery([*posttrain_args("sft", pretrained, moved, out, "max_steps=3"), "--resume"]) == 0
    )
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("command", "setting", "message"),
    [
        ("sft", "micro_batch=0", "micro_batch must be > 0, got 0"),
        ("sft", "optim.lr=-1", "optim.lr must be > 0, got -1"),
        ("dpo", "dpo.beta=0", "dpo.beta must be > 0, got 0"),
        ("sft", "keep_last=-1", "keep_last must be >= 0, got -1"),
    ],
)
def test_post_training_refuses_values_out_of_range(
    pretrained, tmp_path, capsys, command, setting, message
):
    data = PAIRS if command == "dpo" else SFT_DATA
    assert refinery(posttrain_args(command, pretrained, data, tmp_path / "out", setting)) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seed=-1", "seed must be in 0 .. 2^64 - 1, got -1"),
        ("seed=18446744073709551616", "seed must be in 0 .. 2^64 - 1"),  # torch's overflow
        ("schedule.min_lr_ratio=2", "schedule.min_lr_ratio must be in [0, 1], got 2"),
        ("train.micro_batch=0", "train.micro_batch must be > 0, got 0"),
        ("model.seq_len=0", "model.seq_len must be > 0, got 0"),
        ("model.n_layers=0", "model.n_layers must be > 0, got 0"),
        ("model.init_std=-1", "model.init_std must be > 0, got -1"),
        ("optim.betas=[0.9]", "optim.betas must be two numbers in [0, 1), got [0.9]"),
        ("optim.betas=[1.5,0.9]", "optim.betas must be two numbers in [0, 1)"),
        ("model.moe.num_experts=4 model.moe.top_k=8", "model.moe.top_k 8 exceeds"),
        ("train.eval_tokens=10", "train.eval_tokens=10 holds no whole sequence"),
        ("anneal.average_last=1", "anneal.average_last must be 0 (off) or at least 2"),
        ("train.spike.window=-1", "train.spike.window must be > 0, got -1"),
        ("train.spike.window=8", "train.spike.window=8 holds fewer losses than min_history=20"),
        ("train.spike.max_skips_in_a_row=-2", "max_skips_in_a_row must be >= 0, got -2"),
    ],
)
def test_training_refuses_values_out_of_range(tokens, tmp_path, capsys, setting, message):
    settings = setting.split()
    assert refinery(train_args(tokens, tmp_path / "run", "max_steps=1", *settings)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tokens, pretrained, tmp_path, capsys):
    assert refinery(train_args(tokens, tmp_path / "run", "max_steps=1", "train.device=cuda")) == 2
    assert "device=cuda, but this torch" in capsys.readouterr().err
    mc = REPO / "conf" / "eval" / "demo_mc.jsonl"
    for device, message in (("cuda", "sees no CUDA GPU"), ("gpu", "expected auto, cpu, cuda")):
        args = ["eval", "--ckpt", str(pretrained), "--mc", str(mc), "--device", device]
        assert refinery(args) == 2
        assert message in capsys.readouterr().err


def test_a_damaged_source_leaves_no_out_folder(source_copy, tmp_path, capsys):
    meta = source_copy / "ckpt-30" / "meta.json"
    meta.write_text(meta.read_text()[:20])
    assert refinery(sft(source_copy, tmp_path / "sft", "max_steps=1")) == 2
    assert f"{meta}: unreadable" in capsys.readouterr().err
    assert not (tmp_path / "sft").exists()


@pytest.mark.parametrize("command", ["train", "sft"])
def test_out_must_be_a_folder(pretrained, tokens, tmp_path, capsys, command):
    file = tmp_path / "file"
    file.write_text("not a run\n")
    if command == "train":
        assert refinery(train_args(tokens, file, "max_steps=1")) == 2
    else:
        assert refinery(sft(pretrained, file, "max_steps=1")) == 2
    assert "is a file" in capsys.readouterr().err


def test_export_never_replaces_its_source(source_copy, tmp_path, capsys):
    before = sorted(p.name for p in source_copy.iterdir())
    for hf in (source_copy, source_copy / "ckpt-30"):
        assert refinery(["export", "--ckpt", str(source_copy), "--hf", str(hf), "--force"]) == 2
        assert "the checkpoint read from" in capsys.readouterr().err
    assert sorted(p.name for p in source_copy.iterdir()) == before
    file = tmp_path / "file"
    file.write_text("x\n")
    assert refinery(["export", "--ckpt", str(source_copy), "--hf", str(file)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_eval_checks_its_out_before_evaluating(pretrained, tmp_path, capsys):
    mc = REPO / "conf" / "eval" / "demo_mc.jsonl"
    meta = pretrained / "ckpt-30" / "meta.json"
    for out, message in (
        (tmp_path, "is a folder"),
        (meta, "which this command reads"),
        (meta / "results.json", "is a file, not a folder"),
    ):
        args = ["eval", "--ckpt", str(pretrained), "--mc", str(mc), "--out", str(out)]
        assert refinery(args) == 2
        assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_finished_in_out_while_this_one_loaded_is_not_replaced(
    pretrained, sft_run, tmp_path, capsys, monkeypatch
):
    """The lock is taken after the model and data are loaded (a config error leaves no out
    folder); a run that wrote out= and ended meanwhile had its checkpoints replaced."""
    from training import posttrain

    out = tmp_path / "sft"
    load = posttrain.load_pretrained

    def another_run_finishes_meanwhile(*args, **kwargs):
        shutil.copytree(sft_run / "ckpt-2", out / "ckpt-2")
        return load(*args, **kwargs)

    monkeypatch.setattr(posttrain, "load_pretrained", another_run_finishes_meanwhile)
    assert refinery(sft(pretrained, out, "max_steps=1")) == 2
    assert f"{out}: another run wrote there while this one was starting (newest ckpt-2)" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["ckpt-2"]
    assert (out / "ckpt-2" / "model.safetensors").read_bytes() == (
        sft_run / "ckpt-2" / "model.safetensors"
    ).read_bytes()
