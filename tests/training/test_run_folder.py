"""What the trainer does with what it finds: a run folder to resume, a checkpoint to anneal
from, and the ways either can disagree with the command (clear errors, exit status 2)."""

import json
import shutil

import pytest
from train_helpers import QUIET, TINY, another_run_holding, read_metrics, train_args

from refinery.cli import main as refinery
from training.checkpoint import resolve_checkpoint
from training.posttrain import PostTrainConfig
from training.ppo import PPOConfig
from training.scaling_sweep import ScalingConfig

RUN = ["max_steps=4", "ckpt_every=2", "train.keep_last=0"]


@pytest.fixture(scope="module")
def finished(tokens, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert refinery(train_args(tokens, out, *RUN)) == 0
    return out


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished 4-step run, checkpoints at steps 2 and 4, for a test to alter."""
    return shutil.copytree(finished, tmp_path / "run")


def resume(tokens, run, *extra: str) -> int:
    return refinery([*train_args(tokens, run, *RUN, *extra), "--resume"])


def test_resume_refuses_another_model_shape(tokens, run, capsys):
    assert resume(tokens, run, "max_steps=6", "model.d_model=128") == 2
    assert "holds a different model (model.d_model: 64 -> 128)" in capsys.readouterr().err


def test_resume_refuses_another_seed(tokens, run, capsys):
    """The data cursor counts windows of the seed's shuffle: under another one the rest of
    the epoch would repeat some windows and skip others."""
    assert resume(tokens, run, "max_steps=6", "seed=1") == 2
    assert "with seed: 0 -> 1: each bucket's shuffle follows seed" in capsys.readouterr().err


def test_resume_names_the_settings_it_changes(tokens, run, capsys):
    assert resume(tokens, run, "max_steps=6", "optim.lr=1e-3") == 0
    err = capsys.readouterr().err
    assert "resuming with changed settings: max_steps: 4 -> 6; optim.lr: 0.003 -> 0.001" in err
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3, 4, 5, 6]


def test_a_resume_that_raises_the_lr_says_so(tokens, tmp_path, capsys):
    """A finished cosine run resumed with a longer max_steps climbs back up its curve."""
    out = tmp_path / "cosine"
    cosine = ["ckpt_every=2", "schedule.warmup_steps=0"]
    assert refinery(train_args(tokens, out, "max_steps=4", *cosine)) == 0
    assert refinery([*train_args(tokens, out, "max_steps=8", *cosine), "--resume"]) == 0
    assert "resume: step 5 trains at lr 0.00165, where the run's schedule had 0.0003" in (
        capsys.readouterr().err
    )
    assert [r["step"] for r in read_metrics(out)] == list(range(1, 9))
    # another schedule is measured against the checkpoint's own, not against itself
    shutil.rmtree(out / "ckpt-8")
    shutil.rmtree(out / "ckpt-6")
    flat = [*cosine, "schedule.kind=constant"]
    assert refinery([*train_args(tokens, out, "max_steps=8", *flat), "--resume"]) == 0
    assert "resume: step 5 trains at lr 0.003, where the run's schedule had 0.0003" in (
        capsys.readouterr().err
    )


def test_a_resume_that_lowers_the_lr_says_so(tokens, tmp_path, capsys):
    """A run resumed with fewer steps (an anneal with a larger global batch) cut its lr
    unsaid."""
    out = tmp_path / "cosine"
    cosine = ["ckpt_every=2", "schedule.warmup_steps=0"]
    assert refinery(train_args(tokens, out, "max_steps=4", *cosine)) == 0
    shutil.rmtree(out / "ckpt-4")
    assert refinery([*train_args(tokens, out, "max_steps=3", *cosine), "--resume"]) == 0
    said = capsys.readouterr().err
    assert (
        "resume: step 3 trains at lr 0.000975, where the run's schedule had 0.00165: the " in said
    )
    assert "cosine schedule over max_steps=3 is further down its decay" in said
    shutil.rmtree(out / "ckpt-3")  # a lower optim.lr is no decay
    lower = ["max_steps=4", "optim.lr=1e-4", *cosine]
    assert refinery([*train_args(tokens, out, *lower), "--resume"]) == 0
    said = capsys.readouterr().err
    assert (
        "where the run's schedule had 0.00165: the cosine schedule over max_steps=4 lowers it"
        in said
    )


def test_settings_a_checkpoint_predates_count_as_their_defaults(tokens, run, capsys):
    """A checkpoint saved before a setting existed resumes as it ran: the setting at its
    default is no change, and a model option at its default is the same model."""
    path = run / "ckpt-4" / "config.json"
    config = json.loads(path.read_text())
    del config["train"]["spike"]["max_skips_in_a_row"], config["model"]["rope_theta"]
    path.write_text(json.dumps(config))
    assert resume(tokens, run, "max_steps=6") == 0
    assert "resuming with changed settings: max_steps: 4 -> 6\n" in capsys.readouterr().err
    assert resume(tokens, run, "max_steps=8", "model.rope_theta=5e5") == 2
    assert "different model (model.rope_theta: 10000.0 -> 500000.0)" in capsys.readouterr().err


def test_resume_at_max_steps_has_nothing_to_train(tokens, run, capsys):
    before = (run / "metrics.jsonl").read_text()
    assert resume(tokens, run) == 0
    assert "is at max_steps=4 already: nothing to train" in capsys.readouterr().out
    assert (run / "metrics.jsonl").read_text() == before
    assert resume(tokens, run, "max_steps=3") == 2
    assert "ckpt-4 is at step 4, past max_steps=3" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "state.pt", "meta.json"])
def test_a_damaged_checkpoint_file_is_named(tokens, run, capsys, name):
    path = run / "ckpt-4" / name
    path.write_bytes(path.read_bytes()[:100])
    assert resume(tokens, run, "max_steps=6") == 2
    err = capsys.readouterr().err
    assert f"{path}: unreadable" in err and "Traceback" not in err
    assert f"{run / 'ckpt-4'} is damaged (ckpt-2 is the one before it)" in err


def test_a_checkpoint_from_an_older_config_still_loads(tokens, run, tmp_path, capsys):
    config_path = run / "ckpt-4" / "config.json"
    config = json.loads(config_path.read_text())
    config["retired"], config["train"]["log_every"] = 1, 1  # keys a later version removed
    config_path.write_text(json.dumps(config))
    args = ["anneal", "--from", str(run), f"out={tmp_path / 'anneal'}", "max_steps=1"]
    assert refinery([*args, "train.progress=false"]) == 0
    err = capsys.readouterr().err
    assert "ignoring keys this version does not know: retired, train.log_every" in err


def test_anneal_writes_only_to_its_own_out(tokens, run, capsys):
    before = sorted(p.name for p in run.iterdir())
    assert refinery(["anneal", "--from", str(run), "max_steps=2"]) == 2
    assert "out= (the anneal's own run folder) is required" in capsys.readouterr().err
    assert refinery(["anneal", "--from", str(run / "ckpt-2"), f"out={run}", "max_steps=2"]) == 2
    assert "the checkpoint read from" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_an_anneal_records_where_it_started(tokens, run, tmp_path, capsys):
    out = tmp_path / "anneal"
    args = ["anneal", "--from", str(run / "ckpt-2"), f"out={out}", "max_steps=1"]
    assert refinery([*args, "train.progress=false"]) == 0
    said = capsys.readouterr()
    assert f"starting from the weights and optimizer state of {run / 'ckpt-2'}" in said.out
    assert "anneal: lr " in said.err and "-> 0 over 1 steps" in said.err
    # recorded relative to the anneal's folder: a copy of both runs resumes
    assert json.loads((out / "ckpt-1" / "meta.json").read_text())["init_from"] == "../run/ckpt-2"
    args[2] = str(run / "ckpt-4")  # the same anneal, continued from another checkpoint
    assert refinery([*args, "max_steps=2", "--resume"]) == 2
    then = (run / "ckpt-2").resolve()
    assert f"continues init_from {then}, not {run / 'ckpt-4'}" in capsys.readouterr().err
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("run", "anneal"):
        shutil.copytree(tmp_path / name, copy / name)
    moved = ["anneal", "--from", str(copy / "run" / "ckpt-2"), f"out={copy / 'anneal'}"]
    assert refinery([*moved, "max_steps=2", "train.progress=false", "--resume"]) == 0
    assert (copy / "anneal" / "ckpt-2").is_dir()
    # the anneal moved alone, its source where it was
    (tmp_path / "deeper").mkdir()
    (copy / "anneal").rename(tmp_path / "deeper" / "alone")
    alone = ["anneal", "--from", str(copy / "run" / "ckpt-2"), f"out={tmp_path / 'deeper/alone'}"]
    assert refinery([*alone, "max_steps=3", "train.progress=false", "--resume"]) == 0


def test_out_is_never_a_checkpoint_or_inside_one(tokens, run, capsys):
    for out in (run / "ckpt-2", run / "ckpt-2" / "again"):
        assert refinery(train_args(tokens, out, "max_steps=1")) == 2
        said = capsys.readouterr().err
        assert f"{run / 'ckpt-2'} is a checkpoint; a run folder holds them" in said
    assert not (run / "ckpt-2" / "again").exists()


def test_out_is_never_the_tokens_folder_or_inside_it(tokens, capsys):
    for out in (tokens, tokens / "train"):
        assert refinery(train_args(tokens, out, "max_steps=1")) == 2
        assert f"lies in {tokens.resolve()}, the tokens folder read from" in capsys.readouterr().err
    assert not (tokens / "train").exists() and not list(tokens.glob("ckpt-*"))


def test_file_uris_and_a_tilde_name_the_folders_they_spell(tokens, tmp_path, monkeypatch):
    """out=file:///x wrote into a folder named "file:" in the working directory, and
    --from / report took a file: URI for a missing folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "home" / "run"
    args = ["train", "--config", str(TINY), f"data=file://{tokens}", *QUIET]
    assert refinery([*args, "out=~/run", "max_steps=1"]) == 0
    assert refinery([*args, f"out=file://{out}/", "max_steps=2", "--resume"]) == 0
    assert [m["step"] for m in read_metrics(out)] == [1, 2]
    assert not (tmp_path / "file:").exists() and not (tmp_path / "~").exists()
    assert resolve_checkpoint(f"file://{out}") == out / "ckpt-2"


def test_an_anneal_of_a_moved_run_reads_the_tokens_beside_it(tokens, tmp_path, capsys):
    """Without data=, an anneal read the tokens path the source recorded: a copied run read
    the original's tokens, a moved one failed on "manifest not found"."""
    shutil.copytree(tokens, tmp_path / "demo" / "tokens")
    run_args = train_args(tmp_path / "demo" / "tokens", tmp_path / "demo" / "train", "max_steps=2")
    assert refinery(run_args) == 0
    (tmp_path / "demo").rename(tmp_path / "moved")
    anneal = ["anneal", "--from", str(tmp_path / "moved" / "train"), *QUIET, "max_steps=1"]
    assert refinery([*anneal, f"out={tmp_path / 'moved' / 'anneal'}"]) == 0
    beside = tmp_path / "moved" / "tokens"
    assert f"anneal: reading {beside}, the source's tokens beside its run folder" in (
        capsys.readouterr().err
    )
    config = json.loads((tmp_path / "moved" / "anneal" / "ckpt-1" / "config.json").read_text())
    assert config["data"] == str(beside)


def test_every_run_config_reads_a_file_uri_as_its_path():
    spelled = {"data": "file:///d/x.jsonl", "out": "file://localhost/o/"}
    assert (PostTrainConfig(**spelled).data, PostTrainConfig(**spelled).out) == (
        "/d/x.jsonl",
        "/o/",
    )
    assert PPOConfig(**spelled, reward="file:///rm").reward == "/rm"
    assert ScalingConfig(**spelled).out == "/o/"


def test_a_second_process_on_the_same_out_stops_at_once(tokens, tmp_path, capsys):
    out = tmp_path / "busy"
    with another_run_holding(out):
        assert refinery(train_args(tokens, out, "max_steps=1")) == 2
        assert f"{out} is in use by another run" in capsys.readouterr().err
    assert not (out / "metrics.jsonl").exists()
    assert refinery(train_args(tokens, out, "max_steps=1")) == 0  # free once it ended


def test_a_resume_clears_what_a_run_killed_while_saving_left(tokens, run):
    """A SIGKILL during a (preemption) save leaves `.tmp-ckpt-<step>`: the run resumed from an
    older checkpoint may never save that step again, so the lock holder removes it."""
    partial = run / ".tmp-ckpt-3"
    shutil.copytree(run / "ckpt-2", partial)
    (partial / "meta.json").unlink()
    assert resume(tokens, run, "max_steps=6") == 0
    assert not partial.exists()
    assert sorted(p.name for p in run.glob("*ckpt*")) == ["ckpt-2", "ckpt-4", "ckpt-6"]


def test_a_checkpoint_copied_without_its_meta_is_passed_over_and_said(tokens, run, capsys):
    """Saves are atomic, so only a copy cut short leaves ckpt-<step>/ without meta.json: the
    resume goes on from the one before it, saying so, and saves that step again."""
    (run / "ckpt-4" / "meta.json").unlink()
    assert resume(tokens, run) == 0
    err = capsys.readouterr().err
    assert f"warning: {run}: ckpt-4 lacks meta.json (copied in part?), passed over" in err
    assert "resuming from ckpt-2" in err
    assert (run / "ckpt-4" / "meta.json").is_file()


def test_a_resume_checks_its_source_where_the_run_recorded_it(
    tokens, run, tmp_path, capsys, monkeypatch
):
    """The relative record is read beside the run, never from the working folder: from
    another tree's `../run`, another run's checkpoint passed for the one it started from."""
    anneal = tmp_path / "a" / "anneal"
    shutil.copytree(run, tmp_path / "a" / "run")
    args = ["anneal", "--from", str(tmp_path / "a" / "run" / "ckpt-2"), f"out={anneal}"]
    assert refinery([*args, "max_steps=1", "train.progress=false"]) == 0
    shutil.copytree(run, tmp_path / "b" / "run")
    (tmp_path / "b" / "x").mkdir()
    monkeypatch.chdir(tmp_path / "b" / "x")
    other = ["anneal", "--from", "../run/ckpt-2", f"out={anneal}", "max_steps=2", "--resume"]
    assert refinery(other) == 2
    err = capsys.readouterr().err
    recorded, given = tmp_path / "a" / "run" / "ckpt-2", tmp_path / "b" / "run" / "ckpt-2"
    assert f"continues init_from {recorded.resolve()}, not {given.resolve()}" in err
    # a pretraining run is no anneal to resume
    assert refinery(["anneal", "--from", str(given), f"out={run}", "--resume"]) == 2
    assert "holds a run that did not start from a checkpoint" in capsys.readouterr().err


def test_train_resume_refuses_an_anneal_folder(tokens, run, tmp_path, capsys):
    """`train --resume` on an anneal's out would take it over as pretraining (cosine, the
    pretraining LR) and lose where it started, so `anneal --resume` could not go on."""
    anneal = tmp_path / "anneal"
    args = ["anneal", "--from", str(run / "ckpt-2"), f"out={anneal}", "train.progress=false"]
    assert refinery([*args, "max_steps=1"]) == 0
    assert resume(tokens, anneal, "max_steps=6") == 2
    began = (run / "ckpt-2").resolve()  # recorded relative to the anneal, named as it is
    assert f"{anneal} holds an anneal of {began}: continue it" in capsys.readouterr().err
    assert sorted(p.name for p in anneal.glob("ckpt-*")) == ["ckpt-1"]
    moved = tmp_path / "elsewhere" / "deeper" / "anneal"  # its relative record misses now
    moved.parent.mkdir(parents=True)
    shutil.move(anneal, moved)
    assert resume(tokens, moved, "max_steps=6") == 2
    assert f"holds an anneal of {began}: continue it" in capsys.readouterr().err


def test_a_checkpoint_without_meta_is_named_wherever_it_is_read(run, capsys):
    from training.checkpoint import CheckpointError, resolve_checkpoint

    (run / "ckpt-4" / "meta.json").unlink()
    assert resolve_checkpoint(run) == run / "ckpt-2"
    assert "ckpt-4 without meta.json (copied in part?) passed over" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="ckpt-4: no meta.json"):
        resolve_checkpoint(run / "ckpt-4")
