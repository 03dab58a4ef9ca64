"""Mix stage: documents -> the same documents with a `bucket` column, and the mixture weights.

    spark-submit jobs/mix.py --input runs/demo/classify --output runs/demo \\
        mix.targets='{encyclopedic: 0.3, news: 0.2, other: 0.5}' [mix.max_epochs=4 ...]

Each document is written once into OUT/mix/, in the bucket of its domain, or in
`anneal.<domain>` when it is among the best-scored documents of the annealing domains.
OUT/mix/_mixture.json holds the plan, on estimated tokens, which the tokenize stage plans
again by its `settings` on the tokens it counts (`mix.counted_plan`) for its manifest:

    {"mixtures": {"pretrain": {bucket: weight}, "anneal": {bucket: weight}},
     "buckets": {bucket: {"documents": n, "tokens": estimated tokens}},
     "anneal": {"domains": [...], "threshold": score or null, "tie_break": its cut or null,
                "selected_by": "quality_score", "seeded_random" or null (none)},
     "settings": the mix section (the tokenize stage plans again on the tokens it counts),
     "report": {"tokens_per_pass", "max_epochs", "domains": {domain: {tokens, share_before,
                target, share_after, epochs, capped}}, "unsampled_domains": [...],
                "anneal_only_domains": [...],
                "absent_targets": [domains with a target but no documents]}}

Input without a `domain` column (classify skipped) is labelled by the URL rules alone.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script folder, where jobs/tokenize.py would shadow the
    # standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from curation.config import CurationConfig
from curation.domains import DomainRules
from curation.mix import ANNEAL, MixConfig, MixError, plan_mixture, unmet_targets
from curation.quality import Cut
from curation.spark.classify import (
    DOMAIN_SCHEMA,
    kept_by_cut,
    rule_label_batches,
    top_fraction_score,
    with_columns,
)
from curation.spark.fs import HadoopFS
from curation.spark.stage import (
    HADOOP_GLOB,
    check_numeric,
    read_documents,
    run_stage,
    seeded_draw,
)
from jobs.common import StageJob, run_main, stage_main
from refinery.config import to_dict

STAGE = "mix"
MIXTURE_FILE = "_mixture.json"  # beside the documents; the tokenize stage reads it


def mixture_plan(fs: HadoopFS, inputs: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(its path, its content) of the mix stage's plan beside the input documents, on any
    filesystem (s3a://.../mix too); None when no input is the mix stage's. Its part files, or
    a glob of them or of mix folders, are refused: they would go without the plans beside
    them, unsaid. Inputs with different plans, or with and without one, are refused: the
    plan's weights are for its own buckets and tokens, so the first one found weighted the
    others' documents wrongly or not at all, without a word."""
    folders = [spec for spec in inputs if not is_glob(fs, spec)]
    globs = [spec for spec in inputs if spec not in folders]
    for spec in inputs:  # part files, or a glob of parts (mix/*.parquet) or of folders
        parent = spec.rstrip("/").rpartition("/")[0] or "."
        if spec in globs:
            candidates = [spec, parent]
        else:
            candidates = [parent] if spec.endswith(".parquet") else []
        pattern = spec in globs  # a literal folder's name may hold `[` or `{`: not a glob
        planned = next((f for f in candidates if _holds_plan(fs, f, pattern)), None)
        if planned:
            raise MixError(
                f"{spec} names the mix stage's documents, whose weights are in "
                f"{planned}/{MIXTURE_FILE}: give each mix folder by name as the input, so "
                "that they are used (or mix them together first)"
            )
    plans = {}
    for spec in folders:
        path = f"{spec.rstrip('/')}/{MIXTURE_FILE}"
        if fs.exists(path):
            plans[path] = fs.read_json(path)
    if not plans:
        return None
    (first, plan), *others = plans.items()
    different = [path for path, other in others if other != plan]
    if different:
        raise MixError(
            f"{first} and {different[0]} are different mixture plans: their documents cannot "
            "be weighted together; mix them together first (refinery mix --input A B)"
        )
    unplanned = [spec for spec in folders if f"{spec.rstrip('/')}/{MIXTURE_FILE}" not in plans]
    if unplanned or globs:
        raise MixError(
            f"{(unplanned or globs)[0]} has no {MIXTURE_FILE} beside {first} (a glob names "
            "no folder to hold one): the mix stage's weights would give its documents none; "
            "mix them together first (refinery mix --input A B)"
        )
    return first, plan


def is_glob(fs: HadoopFS, spec: str) -> bool:
    """Whether an input is a glob (Hadoop's: `{a,b}` too), which names no one folder; a path
    that exists is a folder, `[` and all (`run [v2]/mix`)."""
    return bool(HADOOP_GLOB.search(spec)) and not fs.exists(spec)


def _holds_plan(fs: HadoopFS, folder: str, pattern: bool) -> bool:
    """Whether `folder`, or as a `pattern` any folder it matches, holds a mix stage's plan."""
    path = f"{folder.rstrip('/')}/{MIXTURE_FILE}"
    return fs.exists(path) or (pattern and fs.matches(path))


def anneal_members(docs: DataFrame, config: MixConfig) -> tuple[Column, Cut | None, str | None]:
    """Which documents go to the anneal buckets: the top `top_fraction` of the annealing
    domains (all, when none are named) by quality score, and the cut (score, tie_break);
    without scores (no quality_score column, or none in those domains), a seeded hash sample
    of the same size, said on stderr. Last, how they were chosen (`_mixture.json`'s
    anneal.selected_by): "quality_score", "seeded_random", or None when none are."""
    anneal = config.anneal
    candidate = F.col("domain").isin(anneal.domains) if anneal.domains else F.lit(True)
    if anneal.top_fraction == 0.0:
        return F.lit(False), None, None
    scored = "quality_score" in docs.columns
    if scored:
        check_numeric(docs, "quality_score")
        cut = top_fraction_score(
            docs.where(candidate), "quality_score", anneal.top_fraction, anneal.seed
        )
        if cut is not None:
            return candidate & kept_by_cut("quality_score", cut, anneal.seed), cut, "quality_score"
    if not docs.where(candidate).limit(1).count():  # nothing to anneal on
        return F.lit(False), None, None
    why = (
        "the annealing domains' documents have no quality_score"
        if scored
        else "no quality_score column (classify ran without a quality model)"
    )
    print(
        f"{STAGE}: {why}: the anneal buckets are a seeded random {anneal.top_fraction:.0%} of "
        "the annealing domains, not their best-scored documents",
        file=sys.stderr,
    )
    sample = candidate & (seeded_draw(f"anneal:{anneal.seed}") < anneal.top_fraction)
    return sample, None, "seeded_random"


def refuse_shared_ids(docs: DataFrame) -> None:
    """Inputs that hold the same documents (one folder given twice, or a stage and its
    output) would put each in training twice: refused, naming some of the shared ids."""
    shared = docs.groupBy("id").count().filter(F.col("count") > 1).limit(3).collect()
    if shared:
        ids = ", ".join(repr(row.id) for row in shared)
        raise MixError(
            f"the inputs hold the same documents more than once (ids {ids}): each would be "
            "trained on that many times; give each document once (dedup removes repeats)"
        )


def with_domains(docs: DataFrame, config: CurationConfig) -> DataFrame:
    """`docs` with a domain for every row: input without a `domain` column (classify skipped),
    or rows without one (inputs mixed with and without classify), are labelled by the URL
    rules alone."""
    if "domain" in docs.columns:
        unlabelled = docs.filter(F.col("domain").isNull())
        if not unlabelled.limit(1).count():
            return docs
        print(f"{STAGE}: rows without a domain (classify skipped for them): labelling by URL rules")
        given, unlabelled = docs.filter(F.col("domain").isNotNull()), unlabelled.drop("domain")
    else:
        print(f"{STAGE}: input has no `domain` column (classify skipped); labelling by URL rules")
        given, unlabelled = None, docs
    domains = config.classify.domains
    labelled = unlabelled.mapInArrow(
        rule_label_batches(DomainRules(domains.rules()), domains.fallback),
        with_columns(unlabelled.schema, DOMAIN_SCHEMA),
    )
    return labelled if given is None else given.unionByName(labelled)


def run_mix(
    spark: SparkSession, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/mix/_SUCCESS exists; return its stats (None if skipped)."""
    mixture: dict[str, Any] = {}

    def outcomes():
        docs = read_documents(spark, inputs)
        if "bucket" in docs.columns:  # mixed before (new targets): this mix assigns its own
            docs = docs.drop("bucket")
        fs = HadoopFS(spark)
        if len(inputs) > 1 or any(is_glob(fs, spec) for spec in inputs):  # one glob, several
            refuse_shared_ids(docs)
        docs = with_domains(docs, config)
        columns = [*docs.columns, "bucket"]
        member, cut, selected_by = anneal_members(docs, config.mix)
        tokens = F.ceil(F.length("text") / config.mix.chars_per_token)
        anneal_bucket = F.concat(F.lit(f"{ANNEAL}."), F.col("domain"))  # mix.anneal_bucket
        docs = docs.withColumn("bucket", F.when(member, anneal_bucket).otherwise(F.col("domain")))
        totals = (
            docs.groupBy("domain", "bucket")
            # a bucket whose texts are all null sums to null: it holds no tokens
            .agg(
                F.count("*").alias("documents"), F.coalesce(F.sum(tokens), F.lit(0)).alias("tokens")
            )
            .collect()
        )
        totals.sort(key=lambda row: (row.domain, row.bucket))  # sums in one order on any cluster
        domain_tokens: dict[str, int] = {}
        anneal_tokens: dict[str, int] = {}
        buckets: dict[str, dict[str, int]] = {}
        for row in totals:
            domain_tokens[row.domain] = domain_tokens.get(row.domain, 0) + row.tokens
            if row.bucket != row.domain:  # anneal.<domain>
                anneal_tokens[row.domain] = anneal_tokens.get(row.domain, 0) + row.tokens
            bucket = buckets.setdefault(row.bucket, {"documents": 0, "tokens": 0})
            bucket["documents"] += row.documents
            bucket["tokens"] += row.tokens
        if domain_tokens:
            mixture.update(plan_mixture(domain_tokens, anneal_tokens, config.mix))
            absent = mixture["report"]["absent_targets"]
            if absent:
                print(f"mix: no documents of {absent}: their targets go to the other domains")
            only = mixture["report"]["anneal_only_domains"]
            if only:
                print(
                    f"{STAGE}: note: anneal documents but no weight in mix.targets: "
                    f"{', '.join(only)}; "
                    "their best documents are trained on in annealing only "
                    "(their anneal.<domain> buckets have no pretrain weight)"
                )
            missed = unmet_targets(mixture["report"])
            if missed:
                print(f"{STAGE}: note: {missed}")
        mixture["buckets"] = dict(sorted(buckets.items()))
        threshold, tie = cut or (None, None)  # a document at the cut: its tie_break >= tie
        mixture["anneal"] = {
            "domains": config.mix.anneal.domains,
            "threshold": threshold,
            "tie_break": tie,
            "selected_by": selected_by,
        }
        mixture["settings"] = to_dict(config.mix)  # the tokenize stage plans on its counts
        rows = docs.select(
            *columns,
            F.lit("kept").alias("outcome"),
            F.lit(None).cast("string").alias("reason"),
            F.lit(None).cast("string").alias("error"),
        )
        return rows, columns

    return run_stage(
        spark,
        config,
        out,
        STAGE,
        force,
        outcomes,
        stage_files=lambda: {MIXTURE_FILE: mixture},
    )


JOB = StageJob(STAGE, run_mix)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
