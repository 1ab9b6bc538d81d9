"""What goes into and comes out of a classifier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from worker.engine.lru import CacheObserver
from worker.images.types import PreparedImage
from worker.prompt.types import Prompt


@dataclass(frozen=True)
class ModelInfo:
    id: str
    revision: str
    dtype: str
    device: str


@dataclass(slots=True, unsafe_hash=True)
class ClassificationRequest:
    """One prompt; ``image`` is set exactly when ``prompt.image`` is."""

    prompt: Prompt
    image: PreparedImage | None


CategoryScores = tuple[tuple[str, float], ...]
"""``(key, score)`` per category key active in the prompt's policy, sorted by number."""


@dataclass(slots=True, unsafe_hash=True)
class ClassificationResult:
    """The answer for one prompt.

    ``unsafe_score`` = P(unsafe) = sigmoid(unsafe_logit - safe_logit), the logits of the
    first answer token after ``\\n\\n`` (see ``worker.engine.answers``). ``categories``
    holds only keys active in the prompt's policy, sorted by number.

    ``category_scores``: P(unsafe) × P(first category = key | ``unsafe\\nS``) per active
    key, renormalised over the active keys, so they sum to ``unsafe_score`` (see
    ``worker.engine.answers.category_scores``). Empty where not computed (the reference
    path, test doubles, ``score_categories=False``).
    """

    unsafe_score: float
    unsafe: bool
    categories: tuple[str, ...]
    safe_logit: float
    unsafe_logit: float
    raw_output: str | None
    category_scores: CategoryScores = ()


@dataclass(frozen=True)
class ClassificationFailure:
    """A prompt that could not be classified; the pipeline dead-letters it (stage ``classify``)."""

    error_class: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ClassificationFailure:
        return cls(type(exc).__name__, str(exc) or repr(exc))


Outcome = ClassificationResult | ClassificationFailure


class Classifier(Protocol):
    @property
    def model_info(self) -> ModelInfo: ...

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        """One outcome per request, in request order; never raises for one bad request."""
        ...

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """Report each cache lookup as ``(cache name, hit)``; a classifier without caches
        ignores it. The worker passes a callback that counts them in its metrics."""
        ...
