"""Schema of `conf/curation/*.yaml`: one dataclass per component, validated before Spark starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from refinery.config import ConfigError, load_config

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "curation"
DEFAULT_CONFIG = CONF_DIR / "default.yaml"

# The default pipeline order fixed by DESIGN.md; `pipeline.stages` lists a subset, in this order.
Stage = Literal["extract", "filter", "dedup", "classify", "mix", "tokenize"]
STAGE_ORDER: list[str] = ["extract", "filter", "dedup", "classify", "mix", "tokenize"]


@dataclass
class SparkConfig:
    # Used only when nothing else set the master (spark-submit --master wins).
    master: str = "local[*]"
    app_name: str = "refinery"
    # Passed to SparkSession.builder.config as strings (spark.executor.memory, packages, ...).
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class InputConfig:
    # Prepended to the relative paths of a Common Crawl warc.paths.gz manifest.
    cc_prefix: str = "https://data.commoncrawl.org/"
    # Take only the first N input files (after sorting); null = all.
    limit: int | None = None
    # WARC files read by one Spark task; 1 spreads a crawl's ~1 GB files evenly.
    files_per_task: int = 1

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f"input.limit must be positive or null, got {self.limit}")
        if self.files_per_task <= 0:
            raise ConfigError(f"input.files_per_task must be positive, got {self.files_per_task}")


@dataclass
class TrafilaturaConfig:
    """Options passed to trafilatura.extract (see docs/BENCHMARKS.md for why these values)."""

    include_comments: bool = False
    include_tables: bool = True
    favor_precision: bool = False
    favor_recall: bool = False
    deduplicate: bool = False
    # fast=True skips the readability/jusText fallbacks: faster, a little less recall.
    fast: bool = False


@dataclass
class ExtractConfig:
    # Hard wall-clock limit per document; the extraction process is killed past it
    # (FineWeb: trafilatura hangs on some pages, and signals cannot interrupt lxml).
    timeout_seconds: float = 5.0
    # Decoded HTML larger than this is rejected as `too_large` before parsing.
    max_html_bytes: int = 2_000_000
    # Extracted text shorter than this (after stripping) counts as `empty_extraction`.
    min_text_chars: int = 1
    # Arrow batch size handed from the Python worker to the JVM.
    batch_rows: int = 256
    trafilatura: TrafilaturaConfig = field(default_factory=TrafilaturaConfig)

    def __post_init__(self) -> None:
        for key in ("timeout_seconds", "max_html_bytes", "batch_rows"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"extract.{key} must be positive, got {getattr(self, key)}")


@dataclass
class TokenizeConfig:
    # An existing tokenizer.json to apply; null = train one on a sample of the input first.
    tokenizer: str | None = None
    vocab_size: int = 32_768
    # Text sampled (seeded) to train the tokenizer; BPE merges settle well before 100 MB.
    sample_bytes: int = 100_000_000
    # Tokens per shard: llm.c / modded-nanogpt FineWeb shards hold 100M tokens.
    shard_tokens: int = 100_000_000
    # Longer documents are split into pieces of this many tokens (Gopher's 100,000-word
    # upper bound at ~1.3 tokens per word), so no index entry is unbounded.
    max_document_tokens: int = 131_072
    # Documents held out for validation, chosen by a seeded hash of their id.
    validation_share: float = 0.01
    seed: int = 0
    # Tasks that write shards: shard contents depend on it, not on Spark's input splits.
    partitions: int = 8
    # Cap on repeating a bucket in training: up to ~4 epochs cost little versus fresh
    # data (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models").
    max_epochs: float = 4.0

    def __post_init__(self) -> None:
        for key in ("vocab_size", "sample_bytes", "shard_tokens", "max_document_tokens"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"tokenize.{key} must be positive, got {getattr(self, key)}")
        if self.vocab_size < 512:
            raise ConfigError(f"tokenize.vocab_size must be at least 512, got {self.vocab_size}")
        if self.max_document_tokens > self.shard_tokens:
            raise ConfigError("tokenize.max_document_tokens must not exceed tokenize.shard_tokens")
        if not 0 <= self.validation_share < 1:
            raise ConfigError(
                f"tokenize.validation_share must be in [0, 1), got {self.validation_share}"
            )
        if self.partitions <= 0 or self.max_epochs <= 0:
            raise ConfigError("tokenize.partitions and tokenize.max_epochs must be positive")


@dataclass
class PipelineConfig:
    # Stages run by `refinery curate`, each reading the previous one's kept documents.
    stages: list[Stage] = field(default_factory=lambda: ["extract", "tokenize"])

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("pipeline.stages must name at least one stage")
        if self.stages != sorted(set(self.stages), key=STAGE_ORDER.index):
            raise ConfigError(
                f"pipeline.stages must be distinct and in the order {STAGE_ORDER}, "
                f"got {self.stages}"
            )


@dataclass
class CurationConfig:
    spark: SparkConfig = field(default_factory=SparkConfig)
    input: InputConfig = field(default_factory=InputConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)


def load_curation_config(
    path: str | Path | None = None, overrides: list[str] = ()
) -> CurationConfig:
    """Defaults <- `path` (conf/curation/default.yaml when None) <- key=value overrides."""
    return load_config(CurationConfig, path or DEFAULT_CONFIG, overrides)
