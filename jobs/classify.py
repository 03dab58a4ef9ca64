"""Classify stage: documents -> + quality_score, domain; the keep rule drops low scores.

    spark-submit jobs/classify.py --input runs/demo/filter --output runs/demo \\
        classify.quality.model=models/quality [classify.quality.keep=top_fraction ...]

Skipped, with a line saying so, when no quality model is configured. The domain classifier
is trained on the driver from a seeded sample of the input's rule-labelled documents (see
curation/domains.py); its host-grouped cross-validation scores (accuracy, balanced accuracy,
macro-F1, majority baseline, confusion), the keep rule and its threshold go to
OUT/classify/_classify.json. Rejected rows carry their quality_score and domain.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit
    # The repo root replaces the script folder, where jobs/tokenize.py would shadow the
    # standard library's tokenize module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from curation.classify import DocumentScorer
from curation.config import CurationConfig
from curation.domains import DomainConfig, DomainLabeller, DomainRules, train_domain_classifier
from curation.quality import QualityConfig, QualityDecision, QualityModel
from curation.shipped import locate
from curation.spark.classify import (
    DECISION_SCHEMA,
    DOMAIN_SCHEMA,
    SCORE_SCHEMA,
    decide_batches,
    rule_label_batches,
    score_batches,
    top_fraction_score,
    with_columns,
)
from curation.spark.stage import read_documents, run_stage
from jobs.common import StageJob, run_main, stage_main
from refinery.config import ConfigError

STAGE = "classify"
# Characters of each sampled document brought to the driver for the domain classifier.
SAMPLE_CHARS = 4000
GROUP_LIMIT_THRESHOLD = "spark.sql.optimizer.windowGroupLimitThreshold"


def skip_reason(config: CurationConfig) -> str | None:
    if config.classify.quality.model is None:
        return (
            "classify: skipped, no quality model configured (set classify.quality.model to a "
            "folder written by `refinery train-quality`)"
        )
    return None


def domain_labeller(docs: DataFrame, config: DomainConfig) -> tuple[DomainLabeller, dict]:
    """Rules + a classifier trained on `domain_sample`, collected to the driver."""
    rules = DomainRules(config.rules())
    rows = domain_sample(docs, rules, config).collect()
    classifier, report = train_domain_classifier([r.asDict() for r in rows], config)
    labeller = DomainLabeller(rules, classifier, config.fallback, config.min_confidence)
    return labeller, report


def domain_sample(docs: DataFrame, rules: DomainRules, config: DomainConfig) -> DataFrame:
    """(host, text, label) of up to `sample_per_label` rule-labelled documents per label,
    chosen by a seeded hash of their id (the same sample on every run)."""
    labelled = docs.select("id", "url", "host", F.substring("text", 1, SAMPLE_CHARS).alias("text"))
    labelled = labelled.mapInArrow(
        rule_label_batches(rules, None), with_columns(labelled.schema, DOMAIN_SCHEMA)
    ).where(F.col("domain").isNotNull())
    # Spark keeps each input partition's first `sample_per_label` rows of a label before the
    # shuffle (WindowGroupLimit) only up to this threshold (1000 by default); past it, every
    # labelled document of a label went to one task to be sorted. -1 (turned off) is left.
    conf = docs.sparkSession.conf
    if 0 <= int(conf.get(GROUP_LIMIT_THRESHOLD)) < config.sample_per_label:
        conf.set(GROUP_LIMIT_THRESHOLD, str(config.sample_per_label))
    order = Window.partitionBy("domain").orderBy(F.xxhash64(F.lit(config.seed), "id"), "id")
    sample = labelled.withColumn("n", F.row_number().over(order))
    sample = sample.where(F.col("n") <= config.sample_per_label)
    return sample.select("host", "text", F.col("domain").alias("label"))


def check_quality_model(config: CurationConfig) -> None:
    """Load the model once before Spark starts: a missing or damaged one fails the pipeline
    at once (one inside an archive spark-submit ships is the tasks' to find)."""
    if config.classify.quality.model is None:
        return
    here = locate(config.classify.quality.model).here
    if here is not None and not here.exists():
        raise ConfigError(f"classify.quality.model: no quality model at {here}")
    if here is not None:
        QualityModel.load(here)


def quality_decision(scored: DataFrame, config: QualityConfig) -> QualityDecision:
    """The keep rule; top_fraction becomes the score threshold at the (1 - fraction) quantile."""
    threshold, tie = config.threshold, 0.0
    if config.keep == "top_fraction":
        scores = scored.where(F.col("error").isNull())
        found = top_fraction_score(scores, "quality_score", config.top_fraction, config.seed)
        threshold, tie = (0.0, 0.0) if found is None else found
    return QualityDecision(config.keep, threshold, config.pareto_alpha, config.seed, tie)


def run_classify(
    spark: SparkSession, config: CurationConfig, inputs: list[str], out: str, force: bool = False
) -> dict[str, Any] | None:
    """Run the stage unless OUT/classify/_SUCCESS exists; return its stats (None if skipped)."""
    reason = skip_reason(config)
    if reason:
        raise ConfigError(reason)
    settings = config.classify
    details: dict[str, Any] = {}
    cached: list[DataFrame] = []

    def outcomes():
        model_path = locate(settings.quality.model).tasks
        docs = read_documents(spark, inputs)
        docs = docs.drop(*[c for c in ("quality_score", "domain") if c in docs.columns])
        labeller, domain_report = domain_labeller(docs, settings.domains)
        scorer = spark.sparkContext.broadcast(DocumentScorer(model_path, labeller))
        scored_schema = with_columns(docs.schema, SCORE_SCHEMA)
        scored = docs.mapInArrow(score_batches(scorer), scored_schema)
        scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(scored)
        decision = quality_decision(scored, settings.quality)
        details.update(
            model=str(model_path),
            keep=decision.rule,
            threshold=None if decision.rule in ("pareto", "all") else decision.threshold,
            # a document scored at the cut is kept when its tie_break(seed, id) reaches this
            tie_break=decision.tie if decision.rule == "top_fraction" else None,
            domains=domain_report,
        )
        rows = scored.mapInArrow(
            decide_batches(decision), with_columns(scored_schema, DECISION_SCHEMA)
        )
        return rows, [c for c in scored_schema.fieldNames() if c != "error"]

    try:
        return run_stage(
            spark,
            config,
            out,
            STAGE,
            force,
            outcomes,
            stage_files=lambda: {"_classify.json": details},
        )
    finally:
        for frame in cached:
            frame.unpersist()


JOB = StageJob(STAGE, run_classify, skip=skip_reason, check=check_quality_model)


def main(argv: list[str] | None = None) -> int:
    return stage_main(JOB, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    run_main(main)
