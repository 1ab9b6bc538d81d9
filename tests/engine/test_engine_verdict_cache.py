"""The verdict cache: exact repeats answered from memory, everything else asks the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from engine_helpers import event, image_item, user

from worker.engine.lru import CacheObserver
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    ModelInfo,
    Outcome,
)
from worker.engine.verdict_cache import CachingClassifier
from worker.images.types import PreparedImage
from worker.prompt.build import build_prompts

INFO = ModelInfo(id="tiny", revision="r1", dtype="float32", device="cpu")


class Recorder:
    """A classifier that answers from the prompt text and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.model_info = INFO

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        self.asked.append([r.prompt.text[-40:] for r in requests])
        return [
            ClassificationFailure("Broken", "no")
            if "broken" in r.prompt.text
            else ClassificationResult(
                unsafe_score=0.25,
                unsafe=False,
                categories=(),
                safe_logit=float(len(r.prompt.text)),
                unsafe_logit=0.0,
                raw_output=None,
                category_scores=(("S1", 0.2), ("S10", 0.05)),
            )
            for r in requests
        ]

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """No caches of its own."""


def _image(sha: str) -> PreparedImage:
    return PreparedImage(sha, torch.zeros(4, 3, 2, 2), aspect_ratio_id=1, num_tiles=1)


def _request(text: str, image_sha: str | None = None, **extra: object) -> ClassificationRequest:
    items: list[object] = [text]
    if image_sha is not None:
        items.append(image_item("x"))
    (prompt,) = build_prompts(event([user(*items)], **extra), text_model=False)
    return ClassificationRequest(prompt, _image(image_sha) if image_sha else None)


def test_exact_repeats_are_answered_from_the_cache() -> None:
    inner = Recorder()
    lookups: list[tuple[str, bool]] = []
    cache = CachingClassifier(inner, 16, observer=lambda c, h: lookups.append((c, h)))
    first = cache.classify([_request("hello", "img-1"), _request("bye")])
    again = cache.classify([_request("bye"), _request("hello", "img-1")])
    assert len(inner.asked) == 1
    assert again == [first[1], first[0]]
    for cached in again:
        assert isinstance(cached, ClassificationResult)
        assert cached.category_scores == (("S1", 0.2), ("S10", 0.05))
    assert lookups == [("verdict", False)] * 2 + [("verdict", True)] * 2
    assert cache.model_info == INFO


def test_anything_that_changes_the_prompt_or_model_is_a_miss() -> None:
    inner = Recorder()
    cache = CachingClassifier(inner, 16)
    cache.classify([_request("hello", "img-1")])
    variants = [
        _request("hello", "img-2"),  # other image bytes
        _request("hello there", "img-1"),  # other text
        _request("hello", "img-1", policy={"excluded_category_keys": ["S1"]}),  # other policy
    ]
    for request in variants:
        cache.classify([request])
    inner.model_info = replace(INFO, revision="r2")  # another model revision
    cache.classify([_request("hello", "img-1")])
    assert len(inner.asked) == 5


def test_duplicates_in_one_batch_ask_once_and_failures_are_not_cached() -> None:
    inner = Recorder()
    cache = CachingClassifier(inner, 16)
    out = cache.classify([_request("same"), _request("broken"), _request("same")])
    assert len(inner.asked[0]) == 2
    assert out[0] == out[2] and isinstance(out[1], ClassificationFailure)
    cache.classify([_request("broken")])
    assert len(inner.asked) == 2  # the failure asked again


def test_the_cache_is_bounded_and_zero_disables_it() -> None:
    inner = Recorder()
    cache = CachingClassifier(inner, 1)
    for text in ("a", "b", "b", "a"):
        cache.classify([_request(text)])
    assert len(inner.asked) == 3
    off = CachingClassifier(inner, 0)
    off.classify([_request("a")])
    off.classify([_request("a")])
    assert len(inner.asked) == 5


def test_the_observer_reaches_the_inner_classifier() -> None:
    seen: list[object] = []

    class WithCache(Recorder):
        def set_cache_observer(self, observer: CacheObserver | None) -> None:
            seen.append(observer)

    cache = CachingClassifier(WithCache(), 4)

    def observer(_cache: str, _hit: bool) -> None:
        return None

    cache.set_cache_observer(observer)
    assert seen == [observer]
