"""A deterministic classifier with known scores, for the evaluation tests.

The score of a prompt is written in its text: ``[score=0.372]`` or
``[score=0.9 cats=S1,S10]``; ``[fail]`` makes the prompt fail (stage ``classify``).
Category scores split the unsafe score over the prompt's active keys as the engine's
do (they sum to it): the marked keys share 90 % of it, the others the rest. A verdict
lists the marked keys when it is unsafe. It records the size of every batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from worker.engine.models import Models
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    ModelInfo,
    Outcome,
)
from worker.images.types import TilingSpec

MARKER = re.compile(r"\[score=([0-9.]+)(?: cats=([S0-9,]+))?\]")


class KnownScoreClassifier:
    """Implements ``worker.engine.types.Classifier``."""

    model_info = ModelInfo(id="test-known-scores", revision="none", dtype="none", device="cpu")

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.batches: list[int] = []
        self.images_seen: list[str] = []

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        self.batches.append(len(requests))
        return [self._one(request) for request in requests]

    def _one(self, request: ClassificationRequest) -> Outcome:
        text = request.prompt.text
        if request.image is not None:
            self.images_seen.append(request.image.sha256)
        if "[fail]" in text:
            return ClassificationFailure("TestFailure", "the test asked this prompt to fail")
        match = MARKER.search(text)
        if match is None:
            return ClassificationFailure("NoScore", "no [score=...] marker in the prompt")
        score = float(match.group(1))
        unsafe = score >= self.threshold
        listed = match.group(2).split(",") if match.group(2) and unsafe else []
        keys = request.prompt.category_keys
        marked = [k for k in (match.group(2) or "").split(",") if k in keys]
        return ClassificationResult(
            unsafe_score=score,
            unsafe=unsafe,
            categories=tuple(k for k in listed if k in keys),
            safe_logit=0.0,
            unsafe_logit=0.0,
            raw_output=None,
            category_scores=category_scores(score, keys, marked),
        )


def known_score_models(classifier: KnownScoreClassifier) -> Models:
    # Small tiles keep the test's image tensors small; the classifier ignores pixels.
    return Models(vision=classifier, tiling=TilingSpec(tile_size=56, max_tiles=4))


def category_scores(
    score: float, keys: Sequence[str], marked: Sequence[str]
) -> tuple[tuple[str, float], ...]:
    if not marked:
        return tuple((k, score / len(keys)) for k in keys)
    rest = [k for k in keys if k not in marked]
    share = {k: 0.9 * score / len(marked) for k in marked}
    share |= {k: 0.1 * score / len(rest) for k in rest}
    return tuple((k, share[k]) for k in keys)
