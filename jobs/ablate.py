"""Curation ablation: `refinery ablate [--config conf/ablate/X.yaml] [key=value ...]`.

    refinery ablate out=runs/ablate reference=runs/sample-crawl/reference_articles.jsonl \\
        arms.extracted=runs/demo/extract arms.filtered=runs/demo/filter \\
        arms.classified=runs/demo/classify seeds=[0,1,2]

Each arm (a documents Parquet folder: any stage's output) is tokenized in Spark with ONE
tokenizer (trained on a sample of the first arm unless `tokenizer=` names one), then the same
small model is trained on each arm for the same number of tokens with every seed and scored
in bits per byte on the reference set (plus MC accuracy with `mc=`). Results go to
OUT/ablation.json; finished tokenizations and runs are reused, so a stopped ablation resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import functions as F

from curation.config import CurationConfig, load_curation_config
from curation.inputs import InputError, resolve_documents
from curation.spark.session import build_session, stop_session
from curation.spark.stage import read_documents
from curation.tokenize import TokenizeError
from jobs.common import local_dir, run_main
from jobs.tokenize import run_tokenize, trained_tokenizer
from refinery.cli import GivenOnce
from refinery.config import resolve_path
from refinery.manifest import BUCKET_NAME
from refinery.tokenizer import load_tokenizer
from training import ablation


def shared_tokenizer(spark, cfg: ablation.AblationConfig, curation: CurationConfig) -> Path:
    """The tokenizer every arm is encoded with: the configured file, or one trained once."""
    if cfg.tokenizer:
        return Path(cfg.tokenizer).resolve()
    target = local_dir(cfg.out) / "tokenizer.json"
    if not target.is_file():
        first, path = next(iter(cfg.arms.items()))
        with named_arm(first):
            docs = read_documents(spark, resolve_documents([path]))
            trained_tokenizer(docs, curation.tokenize, target)
    return target


@contextlib.contextmanager
def named_arm(arm: str):
    """An arm's tokenizing error says which arm (an empty one, say)."""
    try:
        yield
    except (TokenizeError, InputError) as err:
        raise type(err)(f"arms.{arm}: {err}") from None


def tokenize_arms(spark, cfg: ablation.AblationConfig) -> dict[str, Path]:
    """OUT/arms/<arm>/tokens for every arm (an arm already tokenized is reused)."""
    base = load_curation_config(None, cfg.curation)
    tokenizer = shared_tokenizer(spark, cfg, base)
    curation = load_curation_config(
        None,
        [*cfg.curation, f"tokenize.tokenizer={tokenizer}", f"tokenize.max_epochs={cfg.max_epochs}"],
    )
    dirs = {}
    for arm, path in cfg.arms.items():
        root = local_dir(cfg.out) / "arms" / arm
        if arm_tokenized(local_dir(cfg.out), arm):  # tokenization.json says it is the same
            held = root / "tokens" / "tokenizer.json"
            if held.read_bytes() != Path(tokenizer).read_bytes():  # made again, or rewritten
                raise TokenizeError(
                    f"arms.{arm}: {held} is not the shared tokenizer {tokenizer}, which changed "
                    f"since the arm was tokenized: remove arms/{arm}/ and runs/{arm}-seed*/ to "
                    "redo it, or choose another out="
                )
            print(f"ablate: arms.{arm}: reusing its tokens ({root / 'tokens'})")
        else:
            with named_arm(arm):
                run_tokenize(spark, curation, resolve_documents([path]), str(root))
        dirs[arm] = root / "tokens"
    return dirs


def arm_path(spec: str) -> str | None:
    """Documents an older tokenization.json named, as `resolve_documents` finds them now
    (None: they are gone)."""
    try:
        return resolve_documents([spec])[0]
    except InputError:
        return None


def arm_documents(spec: str) -> dict[str, str]:
    """An arm as tokenization.json knows it: its documents as resolved here (`./x` and `x`
    alike), and for local ones a digest of their Parquet files' names and sizes, which a
    re-curated folder does not keep."""
    (resolved,) = resolve_documents([spec])  # check_arms found them
    if "://" in resolved:  # Hadoop's to list
        return {"path": resolved}
    is_glob = any(c in resolved for c in "*?[") and not os.path.exists(resolved)
    files = sorted(glob.glob(resolved)) if is_glob else [resolved]
    found = [Path(f) for f in files if Path(f).is_file()]
    for folder in (Path(f) for f in files if Path(f).is_dir()):
        found += sorted(p for p in folder.rglob("*.parquet") if p.is_file())
    listing = "\n".join(f"{p.resolve()} {p.stat().st_size}" for p in found)
    return {"path": resolved, "files": hashlib.sha256(listing.encode()).hexdigest()[:16]}


def arm_tokenized(root: Path, arm: str) -> bool:
    """Whether an arm's tokens are finished (a run stopped midway leaves only its _tmp)."""
    return (root / "arms" / arm / "tokens" / "_SUCCESS").is_file()


def data_overrides(curation: Any) -> Any:
    """The curation= overrides that can change tokens: `spark.*` says how the work is run
    (a rerun on local[1] because the machine is busy makes the same shards)."""
    if not isinstance(curation, list):
        return curation
    return [o for o in curation if not (isinstance(o, str) and o.startswith("spark."))]


def check_tokenization_settings(cfg: ablation.AblationConfig) -> None:
    """OUT's tokenizer and arm tokens are reused only when made with the same settings: a rerun
    with other curation= overrides, tokenizer or max_epochs, or an arm whose documents are
    others (another folder, or the same one curated again), would otherwise silently train on
    the old tokens. New arms may join; an arm whose arms/<arm>/ was removed is made anew, and
    so is everything once arms/ and tokenizer.json are gone."""
    root = Path(local_dir(cfg.out))
    record = root / "tokenization.json"
    settings = {"tokenizer": cfg.tokenizer, "curation": cfg.curation, "max_epochs": cfg.max_epochs}
    then = json.loads(record.read_text()) if record.is_file() else {**settings, "arms": {}}
    made = {arm: spec for arm, spec in then["arms"].items() if arm_tokenized(root, arm)}
    changed = []
    if made or (root / "tokenizer.json").is_file():
        recorded, asked = (
            {**d, "curation": data_overrides(d.get("curation"))} for d in (then, settings)
        )
        changed = [
            f"{k}: {recorded.get(k)} -> {v}" for k, v in asked.items() if recorded.get(k) != v
        ]
    arms = {arm: arm_documents(path) for arm, path in cfg.arms.items()}
    for arm, now in arms.items():
        before = made.get(arm, now)
        if isinstance(before, str):  # an older record: the path as given, without a digest
            before = now if arm_path(before) == now["path"] else {"path": before}
        if before != now:
            what = "other files" if before["path"] == now["path"] else before["path"]
            changed.append(f"arms.{arm}: {what} -> {now['path']}")
    if changed:
        raise TokenizeError(
            f"{root} was tokenized with other settings ({'; '.join(changed)}); choose another "
            "out=, or remove its arms/<arm>/ and runs/<arm>-seed*/ to redo an arm (all of "
            "arms/, runs/ and tokenizer.json for other curation=, tokenizer= or max_epochs=)"
        )
    record.parent.mkdir(parents=True, exist_ok=True)
    arms = {**made, **arms}
    record.write_text(json.dumps({**settings, "arms": arms}, indent=2, sort_keys=True) + "\n")


def check_arms(cfg: ablation.AblationConfig) -> None:
    """Arm names that make folder names, and documents that exist, before anything is
    recorded in OUT or Spark starts."""
    bad = [arm for arm in cfg.arms if not BUCKET_NAME.match(arm)]
    if bad:
        raise TokenizeError(f"arm names {bad} are not usable folder names (letters, digits, _ . -)")
    for arm, path in cfg.arms.items():
        try:
            resolve_documents([path])
        except InputError as err:
            raise InputError(f"arms.{arm}: {err}") from None


# A reference line this long is prose, not boilerplate two pages share by chance.
LEAK_WORDS = 20
# Above this share of the reference's long lines found in an arm, its score is not held out.
LEAK_SHARE = 0.01
STRIPPED = " \t\r\f\v"  # around a line, in Python and Spark alike


def reference_lines(reference: str) -> set[str]:
    """sha256 of the reference's lines of LEAK_WORDS or more words, stripped as Spark strips."""
    from training.evaluation.bpb import read_documents as reference_documents

    documents = reference_documents(resolve_path(reference))
    lines = [line.strip(STRIPPED) for doc in documents for line in doc.split("\n")]
    long = [line for line in lines if len(line.split()) >= LEAK_WORDS]
    return {hashlib.sha256(line.encode()).hexdigest() for line in long}


def reference_leaks(spark, cfg: ablation.AblationConfig) -> dict[str, int]:
    """Per arm, how many of the reference's long lines its documents hold word for word, when
    over LEAK_SHARE: bits per byte on text an arm trained on measure memory, not quality."""
    hashes = reference_lines(cfg.reference)
    if not hashes:
        return {}
    found = {}
    for arm, path in cfg.arms.items():
        docs = read_documents(spark, resolve_documents([path]))
        lines = docs.select(F.explode(F.split("text", "\n")).alias("line"))
        stripped = F.trim("line", F.lit(STRIPPED))
        hashed = lines.select(F.sha2(stripped, 256).alias("h")).distinct()
        n = hashed.where(F.col("h").isin(list(hashes))).count()
        if n > LEAK_SHARE * len(hashes):
            found[arm] = n
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery ablate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action=GivenOnce, help="YAML config (conf/ablate/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(argv)
    cfg = ablation.load_ablation_config(args.config, args.overrides)
    check_arms(cfg)
    ablation.check_inputs(cfg)
    curation = load_curation_config(None, cfg.curation)  # a mistyped key, before OUT records it
    if cfg.tokenizer:
        load_tokenizer(cfg.tokenizer)  # a wrong file too
    check_tokenization_settings(cfg)
    spark = build_session(curation.spark, "ablate")
    try:
        token_dirs = tokenize_arms(spark, cfg)
        leaks = reference_leaks(spark, cfg)
    finally:
        stop_session(spark)
    for arm, n in leaks.items():
        print(
            f"ablate: warning: arms.{arm} holds {n} of the reference's lines of "
            f"{LEAK_WORDS}+ words word for word: the reference is not held out from it, and "
            "its bits per byte reward having seen them",
            file=sys.stderr,
        )
    ablation.run(cfg, token_dirs)
    return 0


if __name__ == "__main__":
    run_main(main)
