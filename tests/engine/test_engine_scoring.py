"""Batching behaviour of the fast path: grouping, failures, out-of-memory, injection."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
import torch
from engine_helpers import INJECTION, event, image_item, noise_image, requests_for, user

from worker.engine.batching import TokenizedSample
from worker.engine.loading import LoadedModel
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    Outcome,
)
from worker.images.types import TilingSpec
from worker.prompt.build import build_prompts

IMAGES = {f"s3://bucket/{n}.png": noise_image(i, 200 + 150 * i, 300) for i, n in enumerate("abcd")}


def _requests(loaded: LoadedModel, texts: Sequence[str], with_image: bool) -> list[Any]:
    prompts = []
    for index, text in enumerate(texts):
        items: list[Any] = [text]
        if with_image:
            items.append(image_item("abcd"[index % 4]))
        prompts += build_prompts(event([user(*items)]), text_model=False)
    return requests_for(loaded, prompts, IMAGES)


def _results(outcomes: Sequence[Outcome]) -> list[ClassificationResult]:
    assert all(isinstance(o, ClassificationResult) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, ClassificationResult)]


def _assert_close(got: list[ClassificationResult], want: list[ClassificationResult]) -> None:
    """Equal up to batch-shape float noise."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.unsafe_logit == pytest.approx(b.unsafe_logit, abs=1e-4)
        assert a.safe_logit == pytest.approx(b.safe_logit, abs=1e-4)
        assert (a.unsafe, a.categories, a.raw_output) == (b.unsafe, b.categories, b.raw_output)


TEXTS = ["hello", "how are you today, my friend?", "x " * 40, "bye", "a", "b c", "d e f", "g"]


def test_score_is_the_two_token_softmax(vision_model: LoadedModel) -> None:
    for result in _results(
        LlamaGuardClassifier(vision_model).classify(_requests(vision_model, TEXTS, with_image=True))
    ):
        diff = result.unsafe_logit - result.safe_logit
        assert result.unsafe_score == pytest.approx(1 / (1 + math.exp(-diff)), abs=1e-12)
        assert result.unsafe == (result.unsafe_score >= 0.5)
        assert (result.raw_output is not None) == result.unsafe
        if result.raw_output is not None:
            assert result.raw_output.startswith("unsafe")


def test_threshold_moves_the_verdict(vision_model: LoadedModel) -> None:
    requests = _requests(vision_model, TEXTS[:4], with_image=False)
    never = _results(LlamaGuardClassifier(vision_model, threshold=1.0).classify(requests))
    always = _results(LlamaGuardClassifier(vision_model, threshold=0.0).classify(requests))
    assert not any(r.unsafe for r in never)
    assert all(r.unsafe for r in always)
    assert [r.unsafe_score for r in never] == [r.unsafe_score for r in always]


def test_image_and_text_requests_never_share_a_batch(vision_model: LoadedModel) -> None:
    images = _requests(vision_model, TEXTS[:4], with_image=True)
    texts = _requests(vision_model, TEXTS[:4], with_image=False)
    mixed = [r for pair in zip(images, texts, strict=True) for r in pair]
    classifier = LlamaGuardClassifier(vision_model)
    seen: list[list[bool]] = []
    score_batch = classifier._score_batch

    def spy(chunk: Sequence[TokenizedSample]) -> list[Outcome]:
        seen.append([s.image is not None for s in chunk])
        return score_batch(chunk)

    classifier._score_batch = spy  # type: ignore[method-assign]
    together = _results(classifier.classify(mixed))
    assert sorted(seen) == [[False] * 4, [True] * 4]
    alone = _results(LlamaGuardClassifier(vision_model).classify(texts))
    assert together[1::2] == alone  # text-only rows are untouched by image rows


def test_injection_and_image_tag_do_not_break_the_batch(vision_model: LoadedModel) -> None:
    texts = [INJECTION, "<|image|> two <|image|> tags", "plain", f"{INJECTION} <|image|>"]
    for with_image in (True, False):
        results = _results(
            LlamaGuardClassifier(vision_model).classify(
                _requests(vision_model, texts, with_image=with_image)
            )
        )
        assert len(results) == len(texts)


def test_malformed_requests_fail_alone(vision_model: LoadedModel) -> None:
    good = _requests(vision_model, TEXTS[:4], with_image=True)
    bad_shape = ClassificationRequest(
        good[1].prompt, replace(good[1].image, pixel_values=torch.zeros(4, 3, 8, 8))
    )
    no_image = ClassificationRequest(good[2].prompt, None)
    nan_pixels = replace(good[3].image, pixel_values=good[3].image.pixel_values.clone())
    nan_pixels.pixel_values[0, 0, 0, 0] = float("nan")
    outcomes = LlamaGuardClassifier(vision_model).classify(
        [good[0], bad_shape, no_image, ClassificationRequest(good[3].prompt, nan_pixels)]
    )
    assert isinstance(outcomes[0], ClassificationResult)
    for outcome in outcomes[1:]:
        assert isinstance(outcome, ClassificationFailure)
        assert outcome.error_class == "MalformedRequest"
    assert "shape" in outcomes[1].message  # type: ignore[union-attr]


def test_a_sample_that_breaks_its_batch_is_retried_alone(vision_model: LoadedModel) -> None:
    requests = _requests(vision_model, TEXTS, with_image=True)
    expected = _results(LlamaGuardClassifier(vision_model).classify(requests))
    classifier = LlamaGuardClassifier(vision_model, max_batch_size=8)
    score_batch = classifier._score_batch

    def poisoned(chunk: Sequence[TokenizedSample]) -> list[Outcome]:
        if any(sample.index == 5 for sample in chunk):
            raise RuntimeError("boom: sample 5 is poison")
        return score_batch(chunk)

    classifier._score_batch = poisoned  # type: ignore[method-assign]
    outcomes = classifier.classify(requests)
    failure = outcomes[5]
    assert isinstance(failure, ClassificationFailure)
    assert (failure.error_class, failure.message) == ("RuntimeError", "boom: sample 5 is poison")
    others = _results([o for i, o in enumerate(outcomes) if i != 5])
    _assert_close(others, [r for i, r in enumerate(expected) if i != 5])


def test_out_of_memory_halves_the_batch(vision_model: LoadedModel) -> None:
    requests = _requests(vision_model, TEXTS, with_image=True)
    expected = _results(LlamaGuardClassifier(vision_model).classify(requests))
    classifier = LlamaGuardClassifier(vision_model, max_batch_size=8)
    sizes: list[int] = []
    score_batch = classifier._score_batch

    def small_gpu(chunk: Sequence[TokenizedSample]) -> list[Outcome]:
        sizes.append(len(chunk))
        if len(chunk) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return score_batch(chunk)

    classifier._score_batch = small_gpu  # type: ignore[method-assign]
    outcomes = _results(classifier.classify(requests))
    assert sizes == [8, 4, 2, 2, 4, 2, 2]
    _assert_close(outcomes, expected)


def test_out_of_memory_on_one_sample_fails_it(vision_model: LoadedModel) -> None:
    classifier = LlamaGuardClassifier(vision_model)

    def no_memory(chunk: Sequence[TokenizedSample]) -> list[Outcome]:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    classifier._score_batch = no_memory  # type: ignore[method-assign]
    outcomes = classifier.classify(_requests(vision_model, TEXTS[:2], with_image=False))
    assert [type(o) for o in outcomes] == [ClassificationFailure, ClassificationFailure]
    assert outcomes[0].error_class == "OutOfMemoryError"  # type: ignore[union-attr]


def test_a_broken_device_is_not_dead_lettered(vision_model: LoadedModel) -> None:
    classifier = LlamaGuardClassifier(vision_model)

    def broken(chunk: Sequence[TokenizedSample]) -> list[Outcome]:
        raise RuntimeError("CUDA error: device-side assert triggered")

    classifier._score_batch = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="device-side assert"):
        classifier.classify(_requests(vision_model, TEXTS[:2], with_image=False))


def test_order_and_chunking(vision_model: LoadedModel) -> None:
    requests = _requests(vision_model, TEXTS, with_image=True)
    one_batch = _results(LlamaGuardClassifier(vision_model).classify(requests))
    chunked = _results(LlamaGuardClassifier(vision_model, max_batch_size=3).classify(requests))
    _assert_close(chunked, one_batch)
    assert LlamaGuardClassifier(vision_model).classify([]) == []


def test_tiling_spec_and_model_info(vision_model: LoadedModel, text_model: LoadedModel) -> None:
    assert LlamaGuardClassifier(vision_model).tiling_spec() == TilingSpec()
    info = LlamaGuardClassifier(vision_model).model_info
    assert (info.revision, info.dtype, info.device) == ("local", "float32", "cpu")
    with pytest.raises(ValueError, match="text model"):
        LlamaGuardClassifier(text_model).tiling_spec()


def test_text_model_rejects_images(vision_model: LoadedModel, text_model: LoadedModel) -> None:
    request = _requests(vision_model, ["x"], with_image=True)[0]
    (outcome,) = LlamaGuardClassifier(text_model).classify([request])
    assert isinstance(outcome, ClassificationFailure)
    assert outcome.error_class == "MalformedRequest"


def test_prompt_template_must_match_the_model(
    vision_model: LoadedModel, text_model: LoadedModel
) -> None:
    (for_8b,) = build_prompts(event([user("x")]), text_model=True)
    (for_vision,) = build_prompts(event([user("x")]), text_model=False)
    wrong_for_vision, right_for_vision = LlamaGuardClassifier(vision_model).classify(
        [ClassificationRequest(for_8b, None), ClassificationRequest(for_vision, None)]
    )
    assert isinstance(wrong_for_vision, ClassificationFailure)
    assert "lg3_8b" in wrong_for_vision.message
    assert isinstance(right_for_vision, ClassificationResult)
    (wrong_for_text,) = LlamaGuardClassifier(text_model).classify(
        [ClassificationRequest(for_vision, None)]
    )
    assert isinstance(wrong_for_text, ClassificationFailure)
