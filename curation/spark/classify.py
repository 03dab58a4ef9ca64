"""mapInArrow glue of the classify and mix stages: score, decide, weak-label.

Scoring and deciding are two passes so that a rule needing the whole score distribution
(DCLM's top fraction) can get its threshold in between (`top_fraction_score`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark import Broadcast
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from curation.classify import DocumentScorer
from curation.domains import DomainRules
from curation.quality import Cut, QualityDecision, tie_break, top_fraction_threshold
from curation.spark.row_groups import check_utf8
from curation.spark.stage import seeded_draw
from refinery.errors import ExecutorSetupError

SCORE_SCHEMA = pa.schema(
    [("quality_score", pa.float64()), ("domain", pa.string()), ("error", pa.string())]
)
DECISION_SCHEMA = pa.schema([("outcome", pa.string()), ("reason", pa.string())])
DOMAIN_SCHEMA = pa.schema([("domain", pa.string())])


# Scores a top-fraction threshold is computed from, at most: beyond, a sample of about this
# many, chosen by a seeded hash of the id (the threshold's sampling error is then ~0.1%).
QUANTILE_SAMPLE = 1_000_000


def top_fraction_score(docs: DataFrame, column: str, fraction: float, seed: int) -> Cut | None:
    """The cut (score, tie_break) that keeps the best `fraction` of `docs` by `column` (None
    without scores): exact over every score, or over a seeded hash sample of the ids when
    there are more than QUANTILE_SAMPLE, so the same on any cluster (Spark's approxQuantile
    merges per-partition summaries, and its answer moves with the partitioning)."""
    scores = docs.where(F.col(column).isNotNull() & ~F.isnan(column))  # NaN: no score either
    total = scores.count()
    if not total:
        return None
    if total > QUANTILE_SAMPLE:
        scores = scores.where(seeded_draw(f"quantile:{seed}") < QUANTILE_SAMPLE / total)
    # float: a decimal column's Decimal went into _mixture.json as text ("0.90")
    pairs = [
        (float(row[0]), tie_break(seed, row[1])) for row in scores.select(column, "id").collect()
    ]
    return top_fraction_threshold(pairs, fraction)


def tie_break_column(seed: int) -> Column:
    """`curation.quality.tie_break` as a Spark column over `id`."""
    digits = F.substring(F.sha2(F.concat(F.lit(f"{seed}:"), F.col("id")), 256), 1, 13)
    return F.conv(digits, 16, 10).cast("double") / float(16**13)


def kept_by_cut(column: str, cut: Cut, seed: int) -> Column:
    """Whether a document's (score, tie_break) is at or above `cut`; a NaN score is none (Spark
    orders NaN above every number)."""
    score, tie = cut
    above = (F.col(column) > score) | ((F.col(column) == score) & (tie_break_column(seed) >= tie))
    return above & ~F.isnan(column)


def with_columns(documents: StructType, added: pa.Schema) -> StructType:
    """The document schema with `added` appended (documents must not have them already)."""
    return StructType([*documents.fields, *from_arrow_schema(added).fields])


def _append(batch: pa.RecordBatch, columns: dict[str, list], schema: pa.Schema) -> pa.RecordBatch:
    arrays = [*batch.columns, *(pa.array(columns[f.name], f.type) for f in schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*batch.schema, *schema]))


def score_batches(scorer: Broadcast):
    """Documents -> the same rows + quality_score, domain, error (a document that cannot be
    scored gets an error and no score; the rest of its batch is scored normally)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        documents: DocumentScorer = scorer.value
        for batch in batches:
            yield _append(batch, _score_batch(documents, batch), SCORE_SCHEMA)

    return run


def _score_batch(scorer: DocumentScorer, batch: pa.RecordBatch) -> dict[str, list]:
    check_utf8(batch, "classify")
    urls, hosts, texts, ids = (batch.column(c).to_pylist() for c in ("url", "host", "text", "id"))
    try:
        scores, domains = scorer.score(urls, hosts, texts)
        return {"quality_score": scores, "domain": domains, "error": [None] * len(ids)}
    except ExecutorSetupError:  # no document's fault: the task fails, saying why
        raise
    except Exception:  # find the documents at fault, one by one
        out: dict[str, list] = {"quality_score": [], "domain": [], "error": []}
        for i, doc_id in enumerate(ids):
            try:
                (score,), (domain,) = scorer.score([urls[i]], [hosts[i]], [texts[i]])
                out["quality_score"].append(score)
                out["domain"].append(domain)
                out["error"].append(None)
            except Exception as err:
                out["quality_score"].append(None)
                out["domain"].append(None)
                out["error"].append(f"classify of document {doc_id}: {type(err).__name__}: {err}")
        return out


def decide_batches(decision: QualityDecision):
    """Scored rows -> + outcome, reason: kept, rejected by the keep rule, or error."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            ids, scores, errors = (
                batch.column(c).to_pylist() for c in ("id", "quality_score", "error")
            )
            outcome, reason = [], []
            for doc_id, score, error in zip(ids, scores, errors, strict=True):
                verdict = None if error else decision.decide(doc_id, score)
                outcome.append("error" if error else "kept" if verdict is None else "rejected")
                reason.append(verdict)
            yield _append(batch, {"outcome": outcome, "reason": reason}, DECISION_SCHEMA)

    return run


def rule_label_batches(rules: DomainRules, fallback: str | None):
    """Documents -> + domain from the URL rules alone; unmatched get `fallback` (None: null)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            urls, hosts = batch.column("url").to_pylist(), batch.column("host").to_pylist()
            labels = [rules.label(u, h) or fallback for u, h in zip(urls, hosts, strict=True)]
            yield _append(batch, {"domain": labels}, DOMAIN_SCHEMA)

    return run
