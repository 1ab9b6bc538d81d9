"""Test doubles of the model side (importable from every test folder)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from worker.engine.models import Models
from worker.engine.types import ClassificationRequest, ClassificationResult, ModelInfo, Outcome
from worker.images.types import TilingSpec

SAFE = ClassificationResult(
    unsafe_score=0.01,
    unsafe=False,
    categories=(),
    safe_logit=2.3,
    unsafe_logit=-2.3,
    raw_output=None,
)


class StubClassifier:
    """Implements ``Classifier``: answers every request with ``outcome`` at once, and
    keeps the requests it saw (one list per ``classify`` call)."""

    model_info = ModelInfo(id="test-stub", revision="none", dtype="none", device="cpu")

    def __init__(self, outcome: Outcome = SAFE) -> None:
        self.outcome = outcome
        self.calls: list[list[ClassificationRequest]] = []

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        self.calls.append(list(requests))
        return [self.outcome for _ in requests]

    def set_cache_observer(self, observer: Callable[[str, bool], None] | None) -> None:
        """No caches: nothing to report."""


def stub_models(classifier: Any = None) -> Models:
    """``Models`` around a ``StubClassifier`` (every request safe)."""
    return Models(vision=classifier or StubClassifier(), tiling=TilingSpec())
