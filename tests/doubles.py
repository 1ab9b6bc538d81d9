"""Test doubles of the model side (importable from every test folder)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from worker.engine.models import Models
from worker.engine.types import ClassificationRequest, ClassificationResult, ModelInfo, Outcome
from worker.images.types import TilingSpec


def scored(unsafe_score: float, categories: tuple[str, ...] = ()) -> ClassificationResult:
    """The result a model with this P(unsafe) gives (threshold 0.5; logits to match)."""
    logit = math.log(unsafe_score / (1 - unsafe_score))
    return ClassificationResult(
        unsafe_score=unsafe_score,
        unsafe=unsafe_score >= 0.5,
        categories=categories,
        safe_logit=0.0,
        unsafe_logit=logit,
        raw_output="unsafe\n" + ",".join(categories) if unsafe_score >= 0.5 else None,
    )


class StubClassifier:
    """Implements ``Classifier``: answers every request with ``outcome`` (default: safe,
    P(unsafe) 0.01) at once, and keeps the requests it saw (a list per call)."""

    model_info = ModelInfo(id="test-stub", revision="none", dtype="none", device="cpu")

    def __init__(self, outcome: Outcome | None = None) -> None:
        self.outcome = outcome or scored(0.01)
        self.calls: list[list[ClassificationRequest]] = []

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        self.calls.append(list(requests))
        return [self.outcome for _ in requests]

    def set_cache_observer(self, observer: Callable[[str, bool], None] | None) -> None:
        """No caches: nothing to report."""


def stub_models(classifier: Any = None) -> Models:
    """``Models`` around a ``StubClassifier`` (every request safe)."""
    return Models(vision=classifier or StubClassifier(), tiling=TilingSpec())
