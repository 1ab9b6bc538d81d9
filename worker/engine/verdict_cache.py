"""The verdict cache: exact-repeat requests answered without the model.

A request repeats exactly when its image bytes (sha256), its prompt text and the model
(id and revision) are the same. The prompt text is the rendered template: it holds the
normalised conversation, the policy's categories and the assessed role, so none of
them can differ between a request and the result it is answered with. Only results are
cached, never failures. Identical requests within one batch go to the model once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from worker.engine.lru import CacheObserver, LruCache
from worker.engine.types import (
    ClassificationRequest,
    ClassificationResult,
    Classifier,
    ModelInfo,
    Outcome,
)

# (image sha256 or "", sha256 of the prompt text, prompt format, model id, revision)
VerdictKey = tuple[str, bytes, str, str, str]


def verdict_key(request: ClassificationRequest, model: ModelInfo) -> VerdictKey:
    prompt = request.prompt
    text_digest = hashlib.sha256(prompt.text.encode("utf-8")).digest()
    image = request.image.sha256 if request.image is not None else ""
    return (image, text_digest, str(prompt.format), model.id, model.revision)


class CachingClassifier:
    """Implements ``Classifier`` over ``inner`` with a bounded LRU of results."""

    def __init__(
        self, inner: Classifier, capacity: int, *, observer: CacheObserver | None = None
    ) -> None:
        self.inner = inner
        self._cache: LruCache[VerdictKey, ClassificationResult] = LruCache(capacity)
        self._observer = observer

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """``("verdict", hit)`` per request; passed on to the inner classifier's caches."""
        self._observer = observer
        self.inner.set_cache_observer(observer)

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        info = self.inner.model_info
        outcomes: list[Outcome | None] = [None] * len(requests)
        pending: dict[VerdictKey, list[int]] = {}  # key → request indexes, first one asks
        for index, request in enumerate(requests):
            key = verdict_key(request, info)
            cached = self._cache.get(key)
            hit = True
            if cached is not None:
                outcomes[index] = cached
            elif key in pending:
                pending[key].append(index)  # answered with the first one's outcome
            else:
                pending[key] = [index]
                hit = False
            if self._observer is not None:
                self._observer("verdict", hit)
        if pending:
            asked = [requests[indexes[0]] for indexes in pending.values()]
            answers = self.inner.classify(asked)
            for (key, indexes), outcome in zip(pending.items(), answers, strict=True):
                if isinstance(outcome, ClassificationResult):
                    self._cache.put(key, outcome)
                for index in indexes:
                    outcomes[index] = outcome
        done = [outcome for outcome in outcomes if outcome is not None]
        if len(done) != len(requests):
            raise RuntimeError("a request got no outcome")  # a bug here, not a bad request
        return done
