"""Quality score: a fastText classifier of "reads like a Wikipedia reference" (LLaMA, RedPajama-v1),
and the rules that turn a score into keep / reject.

The same `normalise` runs when the training set is built and when a document is scored, and
it removes what gives a source away rather than its content: HTML/XML tags and WikiText's
`<unk>`, `= = Heading = =` lines, the ` @-@ ` / ` @,@ ` / ` @.@ ` joins, and WikiText's
space-separated punctuation (punctuation becomes its own token for every source). Digits
collapse to `0` so numbers do not fragment the vocabulary.

Keep rules (`classify.quality.keep`):
  threshold     keep score >= 0.25 (LLaMA, Touvron et al. 2023)
  top_fraction  keep the best 10% by score (DCLM, Li et al. 2024); the job turns the fraction
                into a cut (score, then a seeded tie-break by id) from every score, or a
                seeded sample of a million
  pareto        keep when pareto(alpha=9) > 1 - score (GPT-3, Brown et al. 2020), the draw
                seeded by (seed, document id) so a rerun keeps the same documents
  all           score only
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from refinery.config import ConfigError
from refinery.errors import RefineryError

MODEL_FILE = "model.bin"
INFO_FILE = "model.json"
POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
# Bumped when `normalise` changes, so a model is never scored with other normalisation.
NORMALISATION_VERSION = 1

_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")
_WIKI_HEADING = re.compile(r"^[ \t]*(=[ \t]*)+[^=\n]+?([ \t]*=)+[ \t]*\r?$", re.MULTILINE)
_WIKITEXT_JOIN = re.compile(r" @([-,.])@ ")
_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]")
_DIGITS = re.compile(r"\d+")
# Characters of raw text looked at per output token when scoring a prefix (generous: English
# averages ~5 characters per token with its space), so long pages are not normalised in full:
# tokenising is most of the scoring cost.
CHARS_PER_TOKEN_BOUND = 8


class QualityModelError(RefineryError):
    """A quality model folder or file that cannot be used."""


def normalise(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of `text`, with source artefacts removed."""
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = _WIKI_HEADING.sub(" ", text)
    text = _WIKITEXT_JOIN.sub(r"\1", text)
    return _TOKEN.findall(_DIGITS.sub("0", text.lower()))


def model_line(text: str, max_tokens: int) -> str:
    """What the classifier sees of a document: its first `max_tokens` normalised tokens."""
    return " ".join(normalise(text[: max_tokens * CHARS_PER_TOKEN_BOUND])[:max_tokens])


class QualityModel:
    """P(high quality) for texts; a folder with fastText's model.bin and model.json."""

    def __init__(self, model: Any, max_tokens: int):
        self.model = model
        self.max_tokens = max_tokens

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        """Load from the folder `refinery train-quality --output` wrote (or its model.bin)."""
        import fasttext

        path = Path(path)
        folder = path if path.is_dir() else path.parent
        if not path.is_dir() and path.name != MODEL_FILE:  # not the file model.json describes
            raise QualityModelError(
                f"{path}: a quality model is the folder `refinery train-quality` wrote or its "
                f"{MODEL_FILE} (its {INFO_FILE} describes that file alone): copy {path.name} "
                "with its own folder's files instead"
            )
        info_path = folder / INFO_FILE
        if not (folder / MODEL_FILE).is_file() or not info_path.is_file():
            raise QualityModelError(
                f"{path}: not a quality model (expected {MODEL_FILE} and {INFO_FILE}; "
                "`refinery train-quality` writes them)"
            )
        try:
            info = json.loads(info_path.read_text())
        except ValueError as err:
            raise QualityModelError(f"{info_path}: not JSON ({err})") from None
        if not isinstance(info, dict) or not isinstance(info.get("max_tokens"), int):
            raise QualityModelError(f"{info_path}: no integer max_tokens; not a quality model")
        if info.get("normalisation") != NORMALISATION_VERSION:
            raise QualityModelError(
                f"{info_path}: trained with normalisation {info.get('normalisation')}, this "
                f"code scores with {NORMALISATION_VERSION}; retrain it"
            )
        size = (folder / MODEL_FILE).stat().st_size
        if info.get("model_bytes", size) != size:  # fastText loads it, and scores every text 0.5
            raise QualityModelError(
                f"{folder / MODEL_FILE}: {size:,} bytes where {info_path} says "
                f"{info['model_bytes']:,}: an incomplete copy; copy the folder again"
            )
        try:
            model = fasttext.load_model(str(folder / MODEL_FILE))
        except (ValueError, MemoryError, RuntimeError) as err:  # fastText's C++ errors
            raise QualityModelError(
                f"{folder / MODEL_FILE}: not a fastText model ({err})"
            ) from None
        labels = model.get_labels()
        if POSITIVE not in labels:  # every score would be 0: the stage would reject all
            raise QualityModelError(
                f"{folder / MODEL_FILE}: no {POSITIVE} label (its labels: {labels[:5]}); "
                "`refinery train-quality` trains one"
            )
        return cls(model, info["max_tokens"])

    def score(self, texts: list[str]) -> list[float]:
        """P(high quality) per text, predicted in one batch."""
        return self.score_lines([model_line(t or "", self.max_tokens) for t in texts])

    def score_lines(self, lines: list[str]) -> list[float]:
        """P(high quality) of already normalised lines (what `model_line` returns); 0 for a
        line without a word the model knows, which fastText reads as its end-of-line token
        alone and scores as whatever that token learned (1.0 for some models)."""
        if not lines:
            return []
        labels, probs = self.model.predict(lines, k=2)
        scores = []
        for line, names, values in zip(lines, labels, probs, strict=True):
            positive = dict(zip(names, values, strict=True)).get(POSITIVE, 0.0)
            known = any(self.model.get_word_id(word) >= 0 for word in line.split())
            scores.append(float(min(max(positive, 0.0), 1.0)) if known else 0.0)
        return scores


def save_model_info(folder: Path, max_tokens: int) -> None:
    info = {"normalisation": NORMALISATION_VERSION, "max_tokens": max_tokens, "labels": [POSITIVE]}
    info["model_bytes"] = (folder / MODEL_FILE).stat().st_size  # a cut copy loads as a model
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")


# ----------------------------------------------------------------------------- keep rules

KeepRule = Literal["threshold", "top_fraction", "pareto", "all"]


@dataclass
class QualityConfig:
    # Folder written by `refinery train-quality`; null = the classify stage is skipped.
    model: str | None = None
    keep: KeepRule = "threshold"
    threshold: float = 0.25  # LLaMA (Touvron et al. 2023): drop score < 0.25
    top_fraction: float = 0.1  # DCLM (Li et al. 2024) keeps about the top 10%
    pareto_alpha: float = 9.0  # GPT-3 (Brown et al. 2020): keep if pareto(9) > 1 - score
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"classify.quality.threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(
                f"classify.quality.top_fraction must be in (0, 1], got {self.top_fraction}"
            )
        if self.pareto_alpha <= 0:
            raise ConfigError(
                f"classify.quality.pareto_alpha must be positive, got {self.pareto_alpha}"
            )


def pareto_draw(seed: int, doc_id: str, alpha: float) -> float:
    """A Lomax(alpha) draw (numpy's `pareto`, as GPT-3 used) fixed by (seed, document id), so
    the decision does not depend on how documents are split into tasks."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    u = random.Random(int.from_bytes(digest, "little")).random()
    return (1.0 - u) ** (-1.0 / alpha) - 1.0


def tie_break(seed: int, doc_id: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, id) that orders documents of equal score
    (fastText's scores saturate at both ends, so many tie). `tie_break_column` in the Spark
    glue computes the same number: sha256's first 13 hex digits over 16^13."""
    return int(hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()[:13], 16) / 16**13


Cut = tuple[float, float]  # (score, tie_break): a document is kept when its pair is >= it


def top_fraction_threshold(scored: list[Cut], fraction: float) -> Cut | None:
    """The cut that keeps the best ceil(fraction * n) of `scored` (score, tie_break) pairs:
    ties at the cut are broken by the seeded draw, so the fraction holds whatever the
    scores. None without scores. (The Spark stages call it on every score, or on a seeded
    sample of them.)"""
    if not scored:
        return None
    ordered = sorted(scored, reverse=True)
    keep = max(1, min(len(ordered), math.ceil(round(fraction * len(ordered), 9))))
    return ordered[keep - 1]


@dataclass(frozen=True)
class QualityDecision:
    """keep / reject one document by its score; `threshold` is set for threshold rules (for
    top_fraction, the quantile computed from the score distribution)."""

    rule: KeepRule
    threshold: float = 0.0
    pareto_alpha: float = 9.0
    seed: int = 0
    tie: float = 0.0  # top_fraction: the cut's tie_break, for documents scored `threshold`

    @property
    def reason(self) -> str:
        return f"quality:{self.rule}"

    def decide(self, doc_id: str, score: float) -> str | None:
        """None to keep, else the rejection reason."""
        if self.rule == "all":
            return None
        if self.rule == "pareto":
            keep = pareto_draw(self.seed, doc_id, self.pareto_alpha) > 1.0 - score
        elif self.rule == "top_fraction":
            keep = score > self.threshold or (
                score == self.threshold and tie_break(self.seed, doc_id) >= self.tie
            )  # the hash only for a document at the cut
        else:
            keep = score >= self.threshold
        return None if keep else self.reason
