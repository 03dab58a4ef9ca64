"""What the classify stage computes per document: a quality score and a domain label.

`DocumentScorer` is built on the driver (so a missing model fails before any task runs) and
broadcast; each Spark Python worker loads the fastText model once, on first use, and scores
whole Arrow batches with one `predict` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curation.domains import DomainLabeller
from curation.quality import QualityModel, QualityModelError
from refinery.errors import ExecutorSetupError


class DocumentScorer:
    def __init__(self, model_path: str | Path, labeller: DomainLabeller):
        self.model_path = str(model_path)
        self.labeller = labeller
        self._model: QualityModel | None = None

    def __getstate__(self) -> dict[str, Any]:
        # fastText models do not pickle: each executor loads its own copy, once.
        return {**self.__dict__, "_model": None}

    @property
    def model(self) -> QualityModel:
        if self._model is None:  # checked on the driver: missing here is the executor's setup
            try:
                self._model = QualityModel.load(self.model_path)
            except QualityModelError as err:
                raise ExecutorSetupError("classify.quality.model cannot be loaded", err) from None
        return self._model

    def score(
        self, urls: list[str], hosts: list[str], texts: list[str]
    ) -> tuple[list[float], list[str]]:
        """(P(high quality), domain) for each document of a batch."""
        return self.model.score(texts), self.labeller.label(urls, hosts, texts)
