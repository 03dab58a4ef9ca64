"""Schema of `conf/curation/*.yaml`: one dataclass per component, validated before Spark starts."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from curation.domains import DomainConfig
from curation.filters.badwords import BadWordsConfig
from curation.filters.blocklist import BlocklistConfig
from curation.filters.c4 import C4Config
from curation.filters.fineweb import FineWebConfig
from curation.filters.gopher import GopherQualityConfig, GopherRepetitionConfig
from curation.filters.language import LanguageConfig
from curation.mix import MixConfig
from curation.pii import PIIConfig
from curation.quality import QualityConfig
from refinery.config import (
    ConfigError,
    check_seed,
    config_hash,
    load_config,
    parse_override,
    user_path,
)

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
    # A config file's `conf` replaces these whole; a key=value override of one entry joins
    # them. Sizes (driver memory, shuffle partitions) are the machine's: default.yaml sets a
    # laptop's, and a config file without `conf` runs with Spark's or spark-submit's.
    conf: dict[str, str] = field(
        default_factory=lambda: {
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.showConsoleProgress": "false",
        }
    )
    # Where dedup's signatures and iterations keep the rows that cut their lineage (checkpoints.py):
    # local = executors' disks, reliable = OUT/_checkpoints/, which survives a lost executor.
    checkpoints: Literal["local", "reliable"] = "local"

    def __post_init__(self) -> None:
        if not _SPARK_MASTER.fullmatch(self.master):
            raise ConfigError(
                f"spark.master {self.master!r} is no Spark master: local, local[N], local[*], "
                "local[N,F], spark://HOST:PORT, yarn or k8s://HOST:PORT"
            )


# The masters Spark 4 reads (SparkContext.createTaskScheduler); another one failed after OUT
# was locked, in a Java stack trace from the session start
_SPARK_MASTER = re.compile(
    r"local(?:\[(?:\*|0*[1-9]\d*)(?:\s*,\s*\d+)?\])?"
    r"|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]|spark://\S+|k8s://\S+|yarn"
)


@dataclass
class InputConfig:
    # Prepended to the relative paths of a Common Crawl warc.paths.gz manifest.
    cc_prefix: str = "https://data.commoncrawl.org/"
    # Take only the first N input files (a folder's or glob's sorted, a list's in its order);
    # null = all.
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
    # Hard limit per document in CPU seconds; the extraction process is killed past it
    # (FineWeb: trafilatura hangs on some pages, and signals cannot interrupt lxml).
    timeout_seconds: float = 5.0
    # Decoded HTML larger than this is rejected as `too_large` before parsing.
    max_html_bytes: int = 2_000_000
    # Extracted text shorter than this (after stripping) counts as `empty_extraction`.
    min_text_chars: int = 1
    # Rows per Parquet row group a task writes (about 5-10 MB of extracted text per 1,024).
    batch_rows: int = 1024
    trafilatura: TrafilaturaConfig = field(default_factory=TrafilaturaConfig)

    def __post_init__(self) -> None:
        for key in ("timeout_seconds", "max_html_bytes", "batch_rows"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"extract.{key} must be positive, got {getattr(self, key)}")
        if self.min_text_chars < 0:
            raise ConfigError(f"extract.min_text_chars must be >= 0, got {self.min_text_chars}")


FilterStep = Literal[
    "blocklist",
    "language",
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
    "badwords",
    "pii",
]


@dataclass
class FilterConfig:
    # The chain, in order; the first step that rejects a document names its reason. FineWeb's
    # order: URL, language, Gopher repetition, Gopher quality, C4, FineWeb; then bad words on
    # the cleaned text (as C4), and PII last so only surviving documents are redacted (Dolma).
    steps: list[FilterStep] = field(default_factory=lambda: list(get_args(FilterStep)))
    blocklist: BlocklistConfig = field(default_factory=BlocklistConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    badwords: BadWordsConfig = field(default_factory=BadWordsConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)

    def __post_init__(self) -> None:
        if len(set(self.steps)) != len(self.steps):
            raise ConfigError(f"filter.steps names a step twice: {self.steps}")


@dataclass
class ClassifyConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    domains: DomainConfig = field(default_factory=DomainConfig)


@dataclass
class MinHashConfig:
    """MinHash-LSH defaults from FineWeb: word 5-grams, 14 bands x 8 rows (threshold near
    (1/14)^(1/8) = 0.72). NeMo's alternative: shingle: char, ngram: 24, 20 bands x 13 rows."""

    implementation: Literal["numpy", "datasketch"] = "numpy"
    shingle: Literal["word", "char"] = "word"
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    # Documents signed per Arrow batch in a Spark task.
    batch_rows: int = 512

    def __post_init__(self) -> None:
        for key in ("ngram", "bands", "rows", "batch_rows"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"dedup.minhash.{key} must be positive, got {getattr(self, key)}")
        check_seed("dedup.minhash.seed", self.seed)

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


@dataclass
class DedupConfig:
    # Each step can be switched off; they run in this order on what the previous one kept.
    url: bool = True
    exact: bool = True
    near: bool = True
    # Which fetch of a URL seen several times survives.
    url_keep: Literal["latest", "earliest"] = "latest"
    # Which document of an exact group or near-duplicate component survives: the longest text,
    # the earliest fetch, or the highest quality_score (longest when no stage scored quality).
    keep: Literal["longest", "earliest", "quality"] = "longest"
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    # Drop candidate edges whose signatures agree on less than verify_threshold of their
    # positions before components, so one weak LSH match does not merge unrelated pages
    # (a chain of strong matches still joins its ends, as in FineWeb).
    verify: bool = True
    verify_threshold: float = 0.7
    # Large-star/small-star rounds before giving up (it needs O(log^2 n); tens at most).
    max_iterations: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.verify_threshold <= 1.0:
            raise ConfigError(
                f"dedup.verify_threshold must be in [0, 1], got {self.verify_threshold}"
            )
        if self.max_iterations <= 0:
            raise ConfigError(f"dedup.max_iterations must be positive, got {self.max_iterations}")


@dataclass
class TokenizeConfig:
    # An existing tokenizer.json to apply; null = train one on a sample of the input first.
    tokenizer: str | None = None
    vocab_size: int = 32_768
    # How text is cut before BPE: Llama 3's regex (numbers in groups of at most 3 digits), or
    # `gpt2`, GPT-2's (numbers whole; the default before 2026-12-05).
    pretokenizer: Literal["llama3", "gpt2"] = "llama3"
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
        if self.tokenizer:
            self.tokenizer = user_path(self.tokenizer)
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
    stages: list[Stage] = field(default_factory=lambda: list(STAGE_ORDER))

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
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def __post_init__(self) -> None:
        labels = self.classify.domains.labels
        named = [*(self.mix.targets or {}), *self.mix.anneal.domains]
        unknown = sorted({d for d in named if d not in labels})
        if unknown:
            raise ConfigError(
                f"mix.targets / mix.anneal.domains name {unknown}, not in classify.domains.labels"
            )


def load_curation_config(
    path: str | Path | None = None, overrides: list[str] = ()
) -> CurationConfig:
    """Defaults <- `path` (conf/curation/default.yaml when None) <- key=value overrides."""
    return load_config(CurationConfig, path or DEFAULT_CONFIG, overrides)


# The config sections whose settings make each stage's output, within `data_settings`.
STAGE_SECTIONS = {
    "extract": ("input", "extract", "inputs"),  # inputs: the files read (jobs/extract.py)
    "filter": ("filter",),
    "dedup": ("dedup",),
    "classify": ("classify",),
    "mix": ("mix", "classify.domains"),  # its URL rules label documents classify did not
    "tokenize": ("tokenize",),
    # not the config's: the contamination command's benchmarks, n-gram and inputs
    "contamination": ("contamination",),
}
# The config sections a command run alone reads (dotted: mix reads `classify.domains` of
# classify); `spark` is every command's. `inputs` and `contamination` are no config keys.
COMMAND_READS = {**STAGE_SECTIONS, "train-tokenizer": ("tokenize",), "contamination": ()}


def ignored_overrides(command: str, overrides: list[str]) -> list[str]:
    """The sections of `key=value` overrides that `command` (a stage run alone) never reads:
    `refinery extract tokenize.vocab_size=4096` took the key and did nothing with it. A
    section is named as deep as the command's own (`classify.quality` for mix); a whole
    section given as a mapping (`classify={quality: …}`) is read key by key."""
    reads = ("spark", *COMMAND_READS[command])
    ignored = set()
    for key in _override_keys(overrides):
        if any(f"{key}.".startswith(f"{section}.") for section in reads):
            continue
        parts = key.split(".")
        inside = [s for s in reads if "." in s and s.split(".")[0] == parts[0]]
        ignored.add(".".join(parts[:2]) if inside and len(parts) > 1 else parts[0])
    return sorted(ignored)


def _override_keys(overrides: list[str]) -> list[str]:
    """The dotted keys `overrides` set, a mapping's own keys for a mapping value."""
    keys = []
    for word in overrides:
        key, value = parse_override(word)
        pending = [(key, value)]
        while pending:
            key, value = pending.pop()
            if isinstance(value, dict) and value:
                pending += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                keys.append(key)
    return keys


def ignored_note(command: str, overrides: list[str]) -> str | None:
    """The line that says so (None: nothing ignored)."""
    ignored = ignored_overrides(command, overrides)
    if not ignored:
        return None
    named = ", ".join(f"{section}.*" for section in ignored)
    return (
        f"{command}: the {named} settings are ignored: this command reads only its own "
        "(`refinery curate` runs every stage)"
    )


# Sections a stage's hash covered in run.json files written before STAGE_SECTIONS grew: such
# a hash still matches, so no note says the settings changed when only the record did.
EARLIER_SECTIONS = {"mix": ("mix",), "extract": ("input", "extract")}
# Sections a command adds to its stage's settings (not config keys): hashed with the stage's
# settings, recorded in its run.json entry, kept out of the recorded config and its hash.
COMMAND_SECTIONS = ("inputs", "contamination")
# How a skip note names the settings of a stage whose section holds a command's flags.
COMMAND_SETTINGS = {
    "contamination": "--input (or its files written since), --benchmarks, --include-flawed or "
    "--ngram",
    "extract": "input files (--input), input.* or extract.* settings",
}


def data_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a resolved config (`to_dict`) that shape the data, in a copy. Those
    that say how a run was split into work (the `spark` section, `input.files_per_task`,
    Arrow batch sizes) or which stages one command ran (`pipeline`) are left out, and the kept
    languages are a set, so the same shards made another way keep their fingerprint (the
    trainer resumes on it)."""
    settings = copy.deepcopy(config)
    for section in ("spark", "pipeline"):
        settings.pop(section)
    settings["input"].pop("files_per_task")
    settings["extract"].pop("batch_rows")
    settings["dedup"]["minhash"].pop("batch_rows")
    language = settings["filter"]["language"]
    language["languages"] = sorted(set(language["languages"]))
    return settings


def stage_settings_hash(
    config: dict[str, Any], stage: str, sections: tuple[str, ...] | None = None
) -> str | None:
    """The hash of the data settings `stage`'s output depends on (its STAGE_SECTIONS unless
    `sections`; None: not a curation stage)."""
    settings = stage_settings(config, stage, sections)
    return None if settings is None else config_hash(settings)


def stage_settings(
    config: dict[str, Any], stage: str, sections: tuple[str, ...] | None = None
) -> dict[str, Any] | None:
    """{section: its data settings} for what `stage`'s output depends on (see above)."""
    sections = sections or STAGE_SECTIONS.get(stage)
    if sections is None or any(_section(config, s) is None for s in sections):
        return None
    settings = data_settings(config)
    return {section: _section(settings, section) for section in sections}


def _section(settings: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        settings = settings.get(key) if isinstance(settings, dict) else None
    return settings
