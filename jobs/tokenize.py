"""Tokenize stage: documents Parquet -> OUT/tokens/ (shards, tokenizer.json, manifest.json).

    spark-submit jobs/tokenize.py --input runs/demo/extract --output runs/demo [key=value ...]

Without `tokenize.tokenizer` a byte-level BPE tokenizer is first trained on a seeded sample
of the input (what `refinery train-tokenizer` does). Documents are encoded per bucket (the mix
stage's `bucket` column, else one bucket `web`), EOS is appended to each,
a seeded share is held out for validation, and tasks write shards in the format of
refinery/shards.py, each from a contiguous run of the input's row groups, documents in input
order (curation/spark/tokens.py says why). Empty documents go to OUT/rejected/stage=tokenize
with reason `empty`.
The manifest's mixtures are the mix stage's (its _mixture.json beside the input documents),
planned again by its settings on the tokens counted here (an older plan, or one whose
settings plan nothing on the documents left, is copied for the buckets left), else every
bucket in its natural proportion.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script's folder on the path, where jobs/tokenize.py would
    # shadow the standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import DataFrame, SparkSession
from tokenizers import Tokenizer

from curation.config import CurationConfig, TokenizeConfig, stage_settings_hash
from curation.mix import MixError, counted_plan, unmet_targets
from curation.spark.fs import HadoopFS
from curation.spark.row_groups import row_slices
from curation.spark.stage import (
    cleared_on_failure,
    drop_abandoned_attempts,
    other_settings,
    read_documents,
    record_run,
    stage_stats,
)
from curation.spark.task_parquet import drop_unreported
from curation.spark.tokens import encode_and_write, sample_texts
from curation.tokenize import TokenizeError, check_bucket_names
from jobs.common import StageJob, local_dir, read_stage_times, run_main, stage_main
from jobs.mix import MIXTURE_FILE, mixture_plan
from refinery.config import config_hash, to_dict
from refinery.manifest import (
    TOKENIZER_FILE,
    VALIDATION,
    sha256_file,
    split_entry,
    write_manifest,
)
from refinery.shards import dtype_for_vocab, remove_unfinished
from refinery.tokenizer import (
    BOS,
    EOS,
    PAD,
    TokenizerError,
    load_tokenizer,
    special_ids,
    train_tokenizer,
)

STAGE = "tokenize"
TOKENS = "tokens"
TRAINING_RECORD = "training.json"  # `train-tokenizer`'s settings, beside its tokenizer.json
CHAT_TEMPLATE = "BOS, then per message <|role|> content <|end_of_turn|> (refinery.tokenizer)"


def check_buckets(docs: DataFrame) -> None:
    """Refuse bucket names (the mix stage's `bucket` column) that cannot be folder names;
    without the column every document goes to DEFAULT_BUCKET."""
    if "bucket" in docs.columns:
        kind = docs.schema["bucket"].dataType.simpleString()
        if kind != "string":
            files = sorted(docs.inputFiles())
            raise TokenizeError(f"{files[0]}: the bucket column is {kind}, not string (names)")
        check_bucket_names(row["bucket"] for row in docs.select("bucket").distinct().collect())


def note_other_held_out(record: Path, config: TokenizeConfig) -> None:
    """Say when `train-tokenizer` (its record beside the file) trained on documents this run
    holds out for validation: another seed, or a smaller share (with one seed the held-out
    documents are nested, the lowest hashes: a larger share left out is no leak)."""
    try:
        trained = json.loads(record.read_text(encoding="utf-8"))["tokenize"]
        held = {key: trained[key] for key in ("validation_share", "seed")}
    except (OSError, ValueError, KeyError, TypeError):
        return  # no record (a tokenizer from elsewhere), or one that records nothing
    ours = {"validation_share": config.validation_share, "seed": config.seed}
    leaks = held["seed"] != config.seed or held["validation_share"] < config.validation_share
    if config.validation_share > 0 and leaks:
        print(
            f"tokenize: note: {record.parent} was trained leaving out the validation split of "
            f"{_settings(held)}, and this run holds out that of {_settings(ours)}: some "
            "validation documents may be in the tokenizer's training sample (train it again "
            "with these settings for a clean split)",
            file=sys.stderr,
        )


def _settings(values: dict) -> str:
    return ", ".join(f"tokenize.{key}={value:g}" for key, value in values.items())


def trained_tokenizer(docs: DataFrame, config: TokenizeConfig, target: Path) -> None:
    """Train on a seeded sample of `docs` and save to `target` (`train-tokenizer` and here).
    No text is an error; a vocabulary smaller than asked (a sample with no more pairs to
    merge) is said on stderr."""
    sampled: Counter[str] = Counter()

    def texts() -> Iterator[str]:
        for text in sample_texts(docs, config.sample_bytes, config.seed, config.validation_share):
            sampled.update(documents=1, bytes=len(text.encode()))
            yield text

    tokenizer = train_tokenizer(texts(), config.vocab_size, config.pretokenizer)
    if not sampled:
        files = sorted(docs.inputFiles())
        where = files[0] + (f" and {len(files) - 1} more files" if len(files) > 1 else "")
        raise TokenizeError(
            f"no non-empty text outside the validation split (tokenize.validation_share="
            f"{config.validation_share:g}) to train a tokenizer on in {where}"
        )
    if tokenizer.get_vocab_size() < config.vocab_size:
        print(
            f"tokenizer: {tokenizer.get_vocab_size()} tokens, fewer than "
            f"tokenize.vocab_size={config.vocab_size}: the sample ({sampled['documents']} "
            f"documents, {sampled['bytes']:,} bytes) has no more pairs to merge",
            file=sys.stderr,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    tokenizer.save(str(partial))
    os.replace(partial, target)


def stage_tokenizer(docs: DataFrame, config: TokenizeConfig, target: Path) -> Tokenizer:
    """The configured tokenizer file copied to `target`, or one trained on `docs` there."""
    if config.tokenizer:
        tokenizer = load_tokenizer(config.tokenizer)  # refuses a broken file before any work
        note_other_held_out(Path(config.tokenizer).parent / TRAINING_RECORD, config)
        shutil.copyfile(config.tokenizer, target)
        return tokenizer
    trained_tokenizer(docs, config, target)
    return load_tokenizer(target)


def other_tokenizer(given: str, tokens: Path) -> str | None:
    """A note when the configured tokenizer file is no longer the one the finished tokens
    were made with (rewritten at the same path): its settings alone look unchanged."""
    if not given or not Path(given).is_file():
        return None
    if sha256_file(given) == sha256_file(tokens / "tokenizer.json"):
        return None
    return (
        f"{STAGE}: tokenize.tokenizer={given} is not the tokenizer these tokens were made with "
        "(its bytes differ); --force tokenizes again with it"
    )


def run_tokenize(
    spark: SparkSession, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/tokens/_SUCCESS exists; return its stats (None if skipped)."""
    root = local_dir(out)
    final = root / TOKENS
    if (final / "_SUCCESS").exists() and not force:
        print(f"{STAGE}: already done ({final}/_SUCCESS); --force redoes it")
        note = other_settings(HadoopFS(spark), HadoopFS.local(root), STAGE, to_dict(config))
        for line in (note, other_tokenizer(config.tokenize.tokenizer, final)):
            if line:
                print(line)
        return None
    started = time.time()
    cfg = config.tokenize
    mixture_plan(HadoopFS(spark), inputs)  # its refusals before any work, not after it all
    docs = read_documents(spark, inputs, footers=False)
    slices = row_slices(spark, docs.inputFiles(), cfg.partitions)  # checks every footer
    check_buckets(docs)
    tmp = root / "_tmp" / f"{STAGE}-{uuid.uuid4().hex[:12]}"
    with cleared_on_failure(HadoopFS(spark), HadoopFS.local(tmp)):
        staged = tmp / TOKENS
        staged.mkdir(parents=True)
        tokenizer_path = staged / TOKENIZER_FILE
        tokenizer = stage_tokenizer(docs, cfg, tokenizer_path)
        dtype = str(dtype_for_vocab(tokenizer.get_vocab_size()))

        tokenizer_json = tokenizer_path.read_text(encoding="utf-8")
        reports = encode_and_write(
            spark, docs, slices, tokenizer_json, cfg, dtype, staged, str(tmp), STAGE
        )
        remove_unfinished(staged)
        entries = [entry for report in reports for entry in report["entries"]]
        counts: Counter[str] = Counter()
        for report in reports:
            counts.update(report["counts"])

        splits = name_shards(staged, entries)
        buckets = {name: split for name, split in splits.items() if name != VALIDATION}
        if not buckets and counts["validation"]:
            raise TokenizeError(
                f"every non-empty document of {inputs} ({counts['validation']}) fell in the "
                f"validation split (tokenize.validation_share={cfg.validation_share:g}): "
                "lower the share or add documents"
            )
        if not buckets:
            raise TokenizeError(f"no non-empty training documents in {inputs}")
        fs = HadoopFS(spark)
        made_by = curation_hash(fs, HadoopFS.local(root), config)
        content = manifest_content(
            tokenizer, tokenizer_path, dtype, buckets, splits, config, made_by
        )
        content.update(planned_mixtures(fs, inputs, buckets, cfg.max_epochs))
        manifest = write_manifest(staged, content)
        outcomes = [("", "kept", None, counts["kept"])] + [
            ("", "rejected", key.removeprefix("rejected:"), n)
            for key, n in sorted(counts.items())
            if key.startswith("rejected:")
        ]
        stats = stage_stats(outcomes)
        stats.update(
            tokens=sum(s["tokens"] for s in splits.values()),
            bucket_tokens={name: s["tokens"] for name, s in buckets.items()},
            validation_documents=counts["validation"],  # documents; the manifest counts pieces
            split_documents=counts["split"],
            seconds=round(time.time() - started, 3),
        )
        (staged / "_SUCCESS").touch()
        _commit(fs, root, to_dict(config), tmp, final, stats)
    drop_unreported(str(root / "rejected" / f"stage={STAGE}"), [r["attempt"] for r in reports])
    if cfg.validation_share and not manifest.validation.documents:
        print(
            f"{STAGE}: warning: none of {counts['kept']} documents fell in the validation split "
            f"(tokenize.validation_share={cfg.validation_share:g}): the trainer will log no "
            "validation loss; raise the share or add documents",
            file=sys.stderr,
        )
    return stats


def name_shards(staged: Path, entries: list[dict]) -> dict[str, dict]:
    """Rename the tasks' part files to `<prefix>/shard-NNNNN.bin` in (task, n) order; return
    each prefix's split entry for the manifest."""
    by_prefix: dict[str, list[dict]] = {}
    for entry in sorted(entries, key=lambda e: e["path"]):
        prefix = entry.pop("prefix")
        shards = by_prefix.setdefault(prefix, [])
        rel = f"{prefix}/shard-{len(shards):05d}.bin"
        for suffix in (".bin", ".idx"):
            src = (staged / entry["path"]).with_suffix(suffix)
            os.replace(src, (staged / rel).with_suffix(suffix))
        shards.append({**entry, "path": rel})
    return {prefix: split_entry(shards) for prefix, shards in by_prefix.items()}


def planned_mixtures(
    fs: HadoopFS, inputs: list[str], buckets: dict[str, dict], max_epochs: float
) -> dict[str, Any]:
    """The mix stage's mixtures and epoch cap from its _mixture.json beside the input documents
    (on any filesystem: s3a://.../mix too): planned again by its settings on the tokens of the
    buckets that have shards (`counted_plan`), or, for a plan without settings or whose
    settings plan nothing here, its weights for those buckets; {} when the input is not the
    mix stage's, or none of the buckets it weights is left (then natural proportions, said).
    Its cap wins over `max_epochs` (tokenize.max_epochs), as its weights were planned under
    it; a different one is said."""
    found = mixture_plan(fs, inputs)
    if found is None:
        return {}
    plan_file, plan = found
    path = urlparse(plan_file).path if "://" in plan_file else plan_file  # `#` in a path
    folder = Path(path).parent.name
    counted = None
    if "settings" in plan:  # written since 2026-12-06: planned again on counted tokens
        try:
            counted = counted_plan(plan["settings"], {n: b["tokens"] for n, b in buckets.items()})
        except MixError as err:  # its targeted domains all lost after mix
            print(
                f"{STAGE}: warning: {plan_file}: its settings plan nothing on these documents "
                f"({err}); its weights are used for the buckets left",
                file=sys.stderr,
            )
    if counted is not None:
        mixtures = counted["mixtures"]
        # the file by its stage folder, not its absolute path: same run, same manifest
        note = f"planned by the mix stage's settings ({folder}/{MIXTURE_FILE}) on counted tokens"
        missed = unmet_targets(counted["report"])
        if missed:
            print(f"{STAGE}: note: on the counted tokens, {missed}")
    else:
        mixtures = copied_mixtures(plan, buckets)
        note = f"from the mix stage ({folder}/{MIXTURE_FILE})"
    for name, weights in plan.get("mixtures", {}).items():
        lost = {b: w for b, w in weights.items() if b not in buckets and w > 0}
        if lost:
            left = any(b in buckets for b in weights)
            line = lost_buckets_line(name, lost, mixtures, counted is not None, left)
            print(f"{STAGE}: warning: {line}", file=sys.stderr)
    if "pretrain" not in mixtures:
        print(
            f"{STAGE}: warning: no bucket {plan_file} weights holds training documents here: "
            f"the manifest weighs the buckets by their tokens, with tokenize.max_epochs",
            file=sys.stderr,
        )
        return {}
    mixtures.setdefault("anneal", mixtures["pretrain"])
    planned = plan["report"]["max_epochs"]
    if planned != max_epochs:
        print(
            f"{STAGE}: max_epochs {planned:g} from the mix stage's plan ({plan_file}), "
            f"not tokenize.max_epochs={max_epochs:g}: its weights were planned under it "
            "(set mix.max_epochs and rerun mix to change it)",
            file=sys.stderr,
        )
    return {"mixtures": mixtures, "mixtures_note": note, "max_epochs": planned}


def copied_mixtures(plan: dict[str, Any], buckets: dict[str, dict]) -> dict[str, dict]:
    """A plan's mixtures limited to the buckets that have shards, the rest scaled to 1."""
    mixtures = {}
    for name, weights in plan.get("mixtures", {}).items():
        kept = {b: w for b, w in weights.items() if b in buckets and w > 0}
        if kept and len(kept) < sum(w > 0 for w in weights.values()):  # as mix rounds them
            kept = {b: round(w / sum(kept.values()), 9) for b, w in kept.items()}
        if kept:
            mixtures[name] = kept
    return mixtures


def lost_buckets_line(
    mixture: str, lost: dict[str, float], mixtures: dict[str, dict], replanned: bool, left: bool
) -> str:
    """What a mixture loses when buckets the mix stage weighted hold no shards here (every
    document of them rejected on the way, or all in the validation split); `mixtures`: what
    the manifest gets; `left`: whether any of its other buckets is (planned again, an anneal
    mixture without an anneal bucket left is dropped for the pretrain one)."""
    names = ", ".join(f"{b} ({w:.3g})" for b, w in sorted(lost.items()))
    if mixture not in mixtures:
        gone = "no anneal bucket is left" if left else "none of its buckets is left"
        then = gone + (": the anneal mixture is the pretrain one" if mixture == "anneal" else "")
    else:
        then = "planned again without them" if replanned else "the rest are scaled to sum to 1"
    return (
        f"the mix stage's {mixture!r} mixture weights {names}, which hold no training documents "
        f"here (rejected after mix, or all in the validation split): {then}"
    )


def curation_hash(fs: HadoopFS, out: str, config: CurationConfig) -> str:
    """The manifest's `curation_config_hash`: tokenize's own settings and the settings hash
    each other stage of OUT ran with (run.json), not the rest of this command's config, which
    made none of the documents: tokenizing again with another `filter.*` keeps the
    fingerprint the trainer resumes on."""
    stages = read_stage_times(fs, out)
    earlier = {s: record.get("settings_hash") for s, record in stages.items() if s != STAGE}
    return config_hash({STAGE: stage_settings_hash(to_dict(config), STAGE), "stages": earlier})


def manifest_content(
    tokenizer, path: Path, dtype, buckets, splits, config, made_by: str
) -> dict[str, Any]:
    ids = special_ids(tokenizer)
    total = sum(b["tokens"] for b in buckets.values())
    # Natural proportions (each bucket by its token share); the mix stage will set weights.
    natural = {name: b["tokens"] / total for name, b in sorted(buckets.items())}
    return {
        "version": 1,
        "tokenizer": {
            "file": path.name,
            "sha256": sha256_file(path),
            "vocab_size": tokenizer.get_vocab_size(),
            "bos_id": ids[BOS],
            "eos_id": ids[EOS],
            "pad_id": ids[PAD],
            "special_tokens": ids,
            "chat_template": CHAT_TEMPLATE,
        },
        "dtype": dtype,
        "buckets": buckets,
        "validation": splits.get(VALIDATION, split_entry([])),
        "mixtures": {"pretrain": natural, "anneal": natural},
        "mixtures_note": "anneal = pretrain until the mix stage names an annealing bucket",
        "max_epochs": config.tokenize.max_epochs,
        "seed": config.tokenize.seed,
        "curation_config_hash": made_by,
    }


def _commit(
    fs: HadoopFS, root: Path, config: dict[str, Any], tmp: Path, final: Path, stats: dict[str, Any]
) -> None:
    """Move rejected rows, stats, the run.json entry and the tokens folder (with _SUCCESS,
    last) into place, as `curation.spark.stage` commits a stage."""
    (final / "_SUCCESS").unlink(missing_ok=True)  # a stage being redone loses it first
    shutil.rmtree(final, ignore_errors=True)
    run = fs.local(root)
    target = f"{run}/rejected/stage={STAGE}"
    fs.delete(target)
    fs.rename(f"{fs.local(tmp)}/rejected", target)
    fs.write_json(f"{run}/stats/{STAGE}.json", stats)
    record_run(fs, run, config, STAGE, stats)
    os.replace(tmp / TOKENS, final)
    shutil.rmtree(tmp)
    drop_abandoned_attempts(fs, run, STAGE)


def check_tokenizer(config: CurationConfig) -> None:
    """A configured tokenizer file must exist and load (before Spark starts)."""
    if config.tokenize.tokenizer:
        try:
            load_tokenizer(config.tokenize.tokenizer)
        except TokenizerError as err:
            raise TokenizerError(f"tokenize.tokenizer: {err}") from None


JOB = StageJob(STAGE, run_tokenize, check=check_tokenizer, local_output=True)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
