"""Checkpoint folders: `OUT/ckpt-<step>/`, written to a temp folder and renamed.

Layout of one checkpoint::

    model.safetensors   full (unsharded) fp32 weights
    optimizer.pt        full optimizer state keyed by parameter name (torch.save of tensors)
    state.pt            step, scheduler, RNG states, data-loader cursor, spike-guard window
    config.json         the resolved training config
    meta.json           step, manifest fingerprint, tokenizer hash, tokens seen
    tokenizer.json      copy of the data folder's tokenizer, when it has one

Loading never unpickles arbitrary objects: safetensors for weights and
`torch.load(weights_only=True)` for the rest.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from refinery.config import user_path
from refinery.errors import RefineryError
from refinery.folder_lock import folder_lock
from refinery.manifest import sha256_file

CKPT_PATTERN = re.compile(r"^ckpt-(\d+)$")
META = "meta.json"
WEIGHTS = "model.safetensors"
_WARNED: set[Path] = set()  # config.json files whose unknown keys were named once already


class CheckpointError(RefineryError):
    """A missing, incomplete or incompatible checkpoint."""

    every_rank = True  # every rank reads the same checkpoints, of the shared out= and --from


def list_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `out`, oldest first."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = []
    for child in out.iterdir():
        match = CKPT_PATTERN.match(child.name)
        if match and (child / META).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder itself, or the newest checkpoint of a run folder (folders without
    meta.json passed over, and said)."""
    path = Path(user_path(str(path)))
    if (path / META).is_file():
        return path
    if CKPT_PATTERN.match(path.name) and path.is_dir():
        raise CheckpointError(f"{path}: no {META} (a copy cut short?): not a whole checkpoint")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    if not path.is_dir():  # ckpt-10/model.safetensors: the folder holds the whole checkpoint
        raise CheckpointError(f"{path}: is a file: name its checkpoint or run folder")
    found = list_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path}: neither a checkpoint folder nor a run with ckpt-<step>/")
    newer = [name for step, name in partial_checkpoints(path) if step > found[-1][0]]
    if newer:
        print(
            f"warning: {path}: {', '.join(newer)} without {META} (copied in part?) passed "
            f"over; using {found[-1][1].name}",
            file=sys.stderr,
        )
    return found[-1][1]


def partial_checkpoints(out: Path) -> list[tuple[int, str]]:
    """ckpt-<step> folders of `out` without meta.json (step, name), oldest first."""
    complete = {path for _, path in list_checkpoints(out)}
    return sorted(
        (int(m.group(1)), child.name)
        for child in (out.iterdir() if out.is_dir() else ())
        if (m := CKPT_PATTERN.match(child.name)) and child.is_dir() and child not in complete
    )


def refuse_to_overwrite(out: Path, resume: bool, say: bool = True) -> list[tuple[int, Path]]:
    """`out`'s checkpoints; an error when it has some and the command was not told --resume,
    or when `out` is a file, a checkpoint or inside one. Checkpoint folders without meta.json
    (saves are atomic: a copy cut short) are passed over, and said (`say`: on rank 0)."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"out={out} is a file; the run folder must be a folder")
    inside = next((p for p in (out, *out.absolute().parents) if (p / META).is_file()), None)
    if inside is not None:
        raise CheckpointError(f"out={out}: {inside} is a checkpoint; a run folder holds them")
    existing = list_checkpoints(out)
    partial = partial_checkpoints(out)
    if partial and say:
        names = ", ".join(name for _, name in partial)
        since = f"; resuming from {existing[-1][1].name}" if resume and existing else ""
        print(
            f"warning: {out}: {names} {'lacks' if len(partial) == 1 else 'lack'} {META} "
            f"(copied in part?), passed over{since}",
            file=sys.stderr,
        )
    if existing and not resume:
        raise CheckpointError(
            f"{out} already holds checkpoints (newest {existing[-1][1].name}); pass --resume "
            "to continue that run, or choose a new out="
        )
    return existing


@contextlib.contextmanager
def run_lock(out: Path, hold: bool = True, seen: list[tuple[int, Path]] | None = None):
    """Create `out` and hold its lock (`refinery.folder_lock`) while the run writes there
    (`hold`: on rank 0), so that a second job started on the same out= stops at once instead
    of mixing its metrics and checkpoints with the first's. Held, it removes the half-written
    checkpoints of a run killed while saving: no one else writes there, and a run resumed from
    an older step may never save that step again. `seen`: the checkpoints the run found
    before it loaded its model and data; a run that wrote others and ended meanwhile (the
    lock was free again) had them replaced and its metrics deleted."""
    out.mkdir(parents=True, exist_ok=True)
    if not hold:
        yield
        return
    with folder_lock(out, CheckpointError, "run", "out="):
        now = list_checkpoints(out)
        if seen is not None and now != seen:
            newest = f" (newest {now[-1][1].name})" if now else ""
            raise CheckpointError(
                f"{out}: another run wrote there while this one was starting{newest}; rerun "
                "(--resume continues that run) or choose a new out="
            )
        for partial in out.glob(".tmp-ckpt-*"):
            shutil.rmtree(partial, ignore_errors=True)
        yield


def newest_step(out: Path) -> int:
    """The step of `out`'s newest checkpoint (0: none yet)."""
    found = list_checkpoints(out)
    return found[-1][0] if found else 0


def check_finished(out: Path, max_steps: int) -> None:
    """For a command that trains several runs in turn (ablate, scaling): a run that returned
    before max_steps was stopped (SIGTERM, Ctrl-C) and must not be scored as finished."""
    step = newest_step(out)
    if step != max_steps:
        raise CheckpointError(
            f"{out}: training stopped at step {step} of {max_steps}; rerun the same command "
            "to continue it"
        )


def refuse_source_as_out(out: Path, source: Path) -> None:
    """A run never writes into the checkpoint it starts from, nor into a folder holding it
    (its run, whose checkpoints keep_last would delete, or one above, which `export --force`
    would replace), nor below that run (where removing or copying that run
    would take this one along): runs sit side by side, as runs/<name>/train, sft, ...."""
    out, source = out.resolve(), source.resolve()
    if out == source or out in source.parents or source in out.parents:
        raise CheckpointError(
            f"{out} holds {source}, the checkpoint read from: choose another output folder"
        )
    if source.parent in out.parents:
        raise CheckpointError(
            f"{out} lies inside {source.parent}, the run read from: choose a folder beside it"
        )


def refuse_data_as_out(out: Path, data: Path) -> None:
    """A run never writes into the tokens folder it reads: its checkpoints would sit among
    the shards, and rebuilding the tokens (`refinery curate --force`) would delete them."""
    out, data = out.resolve(), data.resolve()
    if out == data or data in out.parents:
        raise CheckpointError(
            f"out={out} lies in {data}, the tokens folder read from (data=): choose a folder "
            "beside it, as runs/<name>/train"
        )


# How a pretraining run records the checkpoint it started from, by kind of run
STARTS = {"init_from": "an anneal", "weights_from": "a `train --from` run"}


def check_continuation(last: Path, method: str, sources: dict[str, Path]) -> dict[str, Any]:
    """Resuming `out` continues its own run: its newest checkpoint `last` must come from a run
    of `method` started from the same `sources` (meta.json key -> checkpoint). Returns the
    checkpoint's meta."""
    meta = load_meta(last)
    found = meta.get("method", "pretraining")
    if found != method:
        raise CheckpointError(
            f"{last.parent} holds a {found} run, not {method}: choose another "
            "out=, or the command that wrote it"
        )
    for key, path in sources.items():
        if meta.get(key) is None:
            other = next((k for k in STARTS if k != key and meta.get(k)), None)
            started = (
                f"{STARTS[other]} of {recorded_places(meta, other, last.parent)[-1]}, not "
                f"{STARTS.get(key, 'a run from a checkpoint')}"
                if other
                else f"a run that did not start from a checkpoint ({key} is not recorded)"
            )
            raise CheckpointError(f"{last.parent} holds {started}: choose another out=")
        places = recorded_places(meta, key, last.parent)
        if all(place != path.resolve() for place in places):
            raise CheckpointError(
                f"{last.parent} continues {key} {places[-1]}, not {path.resolve()}: "
                "resume it from the same checkpoint, or choose another out="
            )
        then = meta.get(f"{key}_sha256")
        if then is not None and weights_sha256(path) != then:
            raise CheckpointError(
                f"{path / WEIGHTS} is not the {key} {last.parent} started from (its sha256 "
                "differs: written again since, as an anneal rewrites averaged/): resume with "
                "those weights, or choose another out="
            )
    return meta


def fresh_start_note(out: Path) -> str:
    """What `--resume` says when `out` holds no checkpoint: one command serves a first launch
    and every restart, so a requeued job that starts over says so."""
    return f"--resume: no checkpoint in {out} yet, starting from scratch"


def source_record(key: str, source: Path, out: Path, weights: bool = False) -> dict[str, str]:
    """A checkpoint a run starts from, as its meta.json records it: relative to the run's own
    folder, so a run moved or copied along with its source (a checkout, runs/<name>/) still
    resumes from it, and absolute, so a run moved alone does. With `weights`, the sha256 of
    its weights too, for a run that reads them again on resume (DPO's and PPO's reference,
    PPO's reward model): one rewritten in place would change its losses."""
    relative = os.path.relpath(source.resolve(), out.resolve())
    record = {key: relative, f"{key}_absolute": str(source.resolve())}
    if weights:
        record[f"{key}_sha256"] = weights_sha256(source)
    return record


def weights_sha256(ckpt: Path) -> str:
    """sha256 of a checkpoint's weights, read once while the file stays as it is (a resume
    checks them, then records them again)."""
    weights = ckpt.resolve() / WEIGHTS
    stat = weights.stat()  # ctime: a copy that keeps the mtime (cp -p, rsync -a) is new
    return _file_sha256(weights, (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))


@functools.cache
def _file_sha256(path: Path, version: tuple[int, ...]) -> str:
    return sha256_file(path)


def recorded_places(meta: dict[str, Any], key: str, run: Path) -> list[Path]:
    """Where the checkpoint a run recorded under `key` may be now, the one it was at last:
    beside the run as it was then, or where it was (source_record); a record of an earlier
    version is one path, absolute or relative to the working folder it ran from."""
    if f"{key}_absolute" in meta:
        return [(run / meta[key]).resolve(), Path(meta[f"{key}_absolute"]).resolve()]
    return [Path(meta[key]).resolve()]


def check_same_data(meta: dict[str, Any], last: Path, data: Path) -> None:
    """A post-training run resumes on the file it started on: its batches are a function of
    (seed, step) over that file's examples. A moved copy is the same data."""
    then = meta.get("data_sha256")
    if then and data.is_file() and sha256_file(data) != then:
        raise CheckpointError(
            f"{data} is not the data {last.parent} was trained on ({meta.get('data')}, "
            "whose sha256 differs): resume with that file, or choose another out="
        )


def resume_step(state: dict[str, Any], last: Path, max_steps: int, say: bool) -> int | None:
    """The step that `last`'s `state` resumes from, or None when the run already reached
    max_steps (said on stdout when `say`); an error past it."""
    step = state["step"]
    if step > max_steps:
        raise CheckpointError(
            f"{last} is at step {step}, past max_steps={max_steps}: raise "
            "max_steps to train on, or evaluate that checkpoint"
        )
    if step == max_steps:
        if say:
            print(f"{last} is at max_steps={max_steps} already: nothing to train")
        return None
    return step


# Where a run's folders are and how it shows its progress: no setting of the run itself.
NOT_SETTINGS = ("data", "out", "progress", "tensorboard", "train.progress", "train.tensorboard")


def changed_settings(then: dict[str, Any], now: Any) -> list[str]:
    """The settings of config dataclass `now` that differ from a checkpoint's saved config
    `then`, as "key: then -> now" (`NOT_SETTINGS` aside). A setting `then` lacks (saved
    before the setting existed) counts as its default: the run behaves as it did."""
    defaults = flat_settings(dataclasses.asdict(type(now)()))
    now = flat_settings(dataclasses.asdict(now))
    then = {key: defaults[key] for key in now if key in defaults} | flat_settings(then)
    return [
        f"{key}: {then.get(key)} -> {now.get(key)}"
        for key in sorted(set(then) | set(now))
        if key not in NOT_SETTINGS and then.get(key) != now.get(key)
    ]


def refuse_another_order(
    source: Path, changed: list[str], keys: tuple[str, ...], what: str
) -> None:
    """Refuse a resume that changes a setting of `keys`, which fix `what` (the order of the
    data, and for post-training the held-out split): a checkpoint's place in the data means
    something only under the order it was trained in, and under another the rest of the run
    would train some examples twice, skip others, or train on ones held out before."""
    hits = [change for change in changed if change.split(":", 1)[0] in keys]
    if hits:
        raise CheckpointError(
            f"cannot resume {source} with {'; '.join(hits)}: {what} follows "
            f"{', '.join(keys[:-1])}{' and ' if len(keys) > 1 else ''}{keys[-1]}, so its place "
            "in the data would mean nothing. Resume with "
            "the run's values, or start a new run"
        )


class OtherSettings(CheckpointError):
    """A run folder that a sweep or an ablation would reuse holds a run of other settings."""


def refuse_other_settings(out: Path, run_cfg: Any, manifest: Any) -> None:
    """A run folder from an earlier sweep point or ablation run is resumed or reused only when
    it trains the same run: another budget would resume a schedule that has already decayed,
    another preset or lr would mix two runs in one, and its results would name only one; a
    finished run on tokens made anew since (an arm re-curated) would be scored as theirs."""
    from training.train import resolve_vocab

    found = list_checkpoints(out)
    if not found:
        return
    run_cfg = copy.deepcopy(run_cfg)
    resolve_vocab(run_cfg, manifest)  # as the trainer fills it in
    changed = changed_settings(load_config_dict(found[-1][1]), run_cfg)
    if changed:
        raise OtherSettings(
            f"{out} was trained with other settings ({'; '.join(changed)}); choose another "
            "out= or remove that run"
        )
    then = load_meta(found[-1][1]).get("manifest_fingerprint")
    if then not in (None, manifest.fingerprint):  # its data= folder tokenized anew since
        raise OtherSettings(
            f"{out} was trained on other tokens (manifest fingerprint {then}; "
            f"{run_cfg.data} now has {manifest.fingerprint}): remove that run to train on them"
        )


def flat_settings(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {"section.key": value}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save_weights(
    weights: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """safetensors' `save_file`, with the mode any other new file gets there (the umask, or
    the folder's default ACL): it writes through a temp file made 0600 (safetensors#782), so
    a teammate's eval or export could not read the weights beside the checkpoint's other
    files."""
    from safetensors.torch import save_file

    probe = path.with_name(f".{path.name}.mode")  # a new file there, made as the others are
    probe.write_bytes(b"")
    mode = stat.S_IMODE(probe.stat().st_mode)
    probe.unlink()
    save_file(weights, path, metadata=metadata)
    os.chmod(path, mode)


def save_checkpoint(
    out: str | Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    state: dict[str, Any],
    config: dict[str, Any],
    meta: dict[str, Any],
    tokenizer: Path | None,
    keep_last: int,
) -> Path:
    """Write `out/ckpt-<step>/` atomically, then `prune` the older ones."""
    out = Path(out)
    final = out / f"ckpt-{step}"
    tmp = out / f".tmp-ckpt-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_weights({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / WEIGHTS)
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save(state, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if tokenizer is not None and tokenizer.is_file():
        shutil.copyfile(tokenizer, tmp / "tokenizer.json")
    # meta.json last: a folder without it is incomplete and never listed
    (tmp / META).write_text(json.dumps({**meta, "step": step}, indent=2, sort_keys=True) + "\n")
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    prune(out, keep_last)
    return final


def is_preemption(ckpt: Path) -> bool:
    """Whether `ckpt` was written off the run's schedule because the job was stopped."""
    try:
        return bool(json.loads((ckpt / META).read_text()).get("preemption"))
    except (OSError, ValueError):
        return False


def scheduled_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """`out`'s checkpoints on the run's schedule (every ckpt_every, the final), oldest first:
    what keep_last counts and an anneal averages, so that a preempted run keeps the same ones
    as an uninterrupted run."""
    return [(step, path) for step, path in list_checkpoints(out) if not is_preemption(path)]


def prune(out: Path, keep_last: int) -> None:
    """Keep the newest `keep_last` scheduled checkpoints (every one for 0), and a preemption
    checkpoint only while it is the newest (the one --resume needs)."""
    found = [path for _, path in list_checkpoints(out)]
    scheduled = [path for path in found if not is_preemption(path)]
    kept = scheduled[-keep_last:] if keep_last > 0 else scheduled
    for path in set(found) - set(kept) - {found[-1]}:
        shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for child in folder.iterdir():
        with open(child, "rb") as f:
            os.fsync(f.fileno())


def load_meta(ckpt: Path) -> dict[str, Any]:
    return _read(ckpt / META, lambda path: json.loads(path.read_text()))


def load_config_dict(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's training config, less the keys this version no longer has (named on
    stderr), so that checkpoints outlive a config change."""
    from refinery.config import drop_unknown_keys
    from training.config import TrainConfig

    path = ckpt / "config.json"
    data = _read(path, lambda path: json.loads(path.read_text()))
    dropped = sorted(drop_unknown_keys(TrainConfig, data))
    if dropped and path not in _WARNED:
        _WARNED.add(path)
        print(
            f"{path}: ignoring keys this version does not know: {', '.join(dropped)}",
            file=sys.stderr,
        )
    return data


def load_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return _read(ckpt / WEIGHTS, load_file)


def weight_names(ckpt: Path) -> list[str]:
    """The names of the checkpoint's weights, read from the safetensors header alone: what a
    command checks before it spends long on other work (the weights are read later)."""
    from safetensors import safe_open

    def names(path: Path) -> list[str]:
        with safe_open(path, "pt") as weights:
            return list(weights.keys())

    return _read(ckpt / WEIGHTS, names)


def last_lr(ckpt: Path) -> float | None:
    """The learning rate the checkpoint's last step trained at (None when it does not say)."""
    return load_torch(ckpt, "state.pt").get("scheduler", {}).get("last_lr")


def load_torch(ckpt: Path, name: str) -> dict[str, Any]:
    """optimizer.pt or state.pt, without unpickling arbitrary objects."""
    return _read(ckpt / name, lambda path: torch.load(path, map_location="cpu", weights_only=True))


def _read(path: Path, load: Callable[[Path], Any]) -> Any:
    """`load(path)`, with a missing or damaged file named in a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint")
    try:
        return load(path)
    except Exception as err:  # each format raises its own: JSON, safetensors, torch's zip
        first_line = next(iter(str(err).splitlines()), "")  # torch's messages run to pages
        if first_line.startswith("Weights only load failed"):  # then advice to unpickle it
            first_line = "not tensors and plain containers alone"
        ckpt = path.parent
        named = CKPT_PATTERN.match(ckpt.name)
        step = int(named.group(1)) if named else None
        earlier = [p for s, p in list_checkpoints(ckpt.parent) if step is not None and s < step]
        hint = f" ({earlier[-1].name} is the one before it)" if earlier else ""
        raise CheckpointError(
            f"{path}: unreadable ({type(err).__name__}: {first_line}); the checkpoint {ckpt} "
            f"is damaged{hint}"
        ) from None
