"""A classifier that costs nothing: measures everything around the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.engine.lru import CacheObserver
from worker.engine.types import ClassificationRequest, ClassificationResult, ModelInfo, Outcome

INSTANT_INFO = ModelInfo(id="bench-instant", revision="none", dtype="none", device="cpu")
SAFE = ClassificationResult(
    unsafe_score=0.01,
    unsafe=False,
    categories=(),
    safe_logit=2.3,
    unsafe_logit=-2.3,
    raw_output=None,
)


class InstantClassifier:
    """Implements ``Classifier``: every request is safe, answered at once."""

    model_info = INSTANT_INFO

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        return [SAFE for _ in requests]

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """No caches: nothing to report."""


def instant_models() -> Any:
    """``Models`` around an instant classifier (every request safe, no model at all)."""
    from worker.engine.models import Models
    from worker.images.types import TilingSpec

    return Models(vision=InstantClassifier(), tiling=TilingSpec())
