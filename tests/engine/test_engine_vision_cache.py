"""Vision once per image: in-batch duplicates and cached projected states.

The fast path encodes each distinct image once and may reuse cached vision states;
its logits must equal a recomputation from pixels (transformers' own vision path,
one prompt at a time) within 1e-3 on the tiny model in fp32, categories included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from engine_helpers import REPORT, event, image_item, noise_image, requests_for, user

from worker.engine import token_ids
from worker.engine.batching import build_batch
from worker.engine.loading import LoadedModel
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.types import ClassificationRequest, ClassificationResult, Outcome
from worker.prompt.build import build_prompts

TOLERANCE = 1e-3
IMAGES = {
    f"s3://bucket/{name}.png": noise_image(i, w, h)
    for i, (name, (w, h)) in enumerate(
        {"a": (300, 700), "b": (560, 560), "c": (1200, 400), "d": (90, 60)}.items()
    )
}
TEXTS = [
    "Describe this picture.",
    "Tell me how to hurt someone without leaving marks.",
    "what is it?",
    "word " * 40,
    "You are useless and everyone hates you.",
    "Is this safe for children?",
]


def _requests(loaded: LoadedModel, pairs: Sequence[tuple[str, str]]) -> list[ClassificationRequest]:
    prompts = []
    for name, text in pairs:
        prompts += build_prompts(event([user(text, image_item(name))]), text_model=False)
    return requests_for(loaded, prompts, IMAGES)


def _results(outcomes: Sequence[Outcome]) -> list[ClassificationResult]:
    assert all(isinstance(o, ClassificationResult) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, ClassificationResult)]


@contextmanager
def _encoder_rows(loaded: LoadedModel) -> Iterator[list[int]]:
    """Images per vision encoder call, as the calls happen."""
    calls: list[int] = []
    handle = loaded.model.model.vision_model.register_forward_hook(
        lambda _m, _a, out: calls.append(int(out.last_hidden_state.shape[0]))
    )
    try:
        yield calls
    finally:
        handle.remove()


def _recomputed_logits(loaded: LoadedModel, request: ClassificationRequest) -> tuple[float, float]:
    """(safe, unsafe) logits of one request through the model's own pixel path."""
    classifier = LlamaGuardClassifier(loaded)
    sample = classifier.tokenize_request(0, request)
    batch = build_batch([sample], pad_id=token_ids.PAD, device=torch.device("cpu"))
    with torch.inference_mode():
        logits = loaded.model(**batch.model_kwargs(), logits_to_keep=1).logits[0, -1]
    return float(logits[token_ids.SAFE]), float(logits[token_ids.UNSAFE])


def _max_delta(got: Sequence[ClassificationResult], want: Sequence[tuple[float, float]]) -> float:
    return max(
        max(abs(r.safe_logit - safe), abs(r.unsafe_logit - unsafe))
        for r, (safe, unsafe) in zip(got, want, strict=True)
    )


def test_duplicates_in_a_batch_are_encoded_once_and_match_recomputation(
    vision_model: LoadedModel,
) -> None:
    pairs = [("a", TEXTS[0]), ("b", TEXTS[1]), ("a", TEXTS[2]), ("a", TEXTS[3]), ("b", TEXTS[4])]
    requests = _requests(vision_model, pairs)
    lookups: list[tuple[str, bool]] = []
    classifier = LlamaGuardClassifier(
        vision_model, cache_observer=lambda c, h: lookups.append((c, h))
    )
    with _encoder_rows(vision_model) as calls:
        results = _results(classifier.classify(requests))
    assert calls == [2]  # a and b, once each
    # Rows run sorted by length, so only the counts are fixed.
    assert sorted(lookups) == [("vision", False)] * 2 + [("vision", True)] * 3
    delta = _max_delta(results, [_recomputed_logits(vision_model, r) for r in requests])
    assert delta <= TOLERANCE
    REPORT.append(f"vision dedup fp32: max |Δlogit| = {delta:.2e} vs per-prompt recomputation")


def test_cached_states_skip_the_encoder_and_match_recomputation(vision_model: LoadedModel) -> None:
    first = _requests(vision_model, [("a", TEXTS[0]), ("c", TEXTS[1])])
    repeat = _requests(vision_model, [("c", TEXTS[2]), ("a", TEXTS[3]), ("d", TEXTS[4])])
    lookups: list[bool] = []
    classifier = LlamaGuardClassifier(
        vision_model, vision_cache_size=8, cache_observer=lambda _c, hit: lookups.append(hit)
    )
    with _encoder_rows(vision_model) as calls:
        _results(classifier.classify(first))
        results = _results(classifier.classify(repeat))
    assert calls == [2, 1]  # the second batch encodes only d
    assert sorted(lookups[2:]) == [False, True, True]
    delta = _max_delta(results, [_recomputed_logits(vision_model, r) for r in repeat])
    assert delta <= TOLERANCE
    REPORT.append(f"vision cache fp32: max |Δlogit| = {delta:.2e} cached states vs recomputation")


def test_categories_decode_from_cached_states(vision_model: LoadedModel) -> None:
    """threshold 0: every row decodes its categories, from cached and fresh states alike."""
    requests = _requests(vision_model, [("b", t) for t in TEXTS[:4]])
    cached = LlamaGuardClassifier(vision_model, threshold=0.0, vision_cache_size=4)
    cached.classify(requests[:1])  # b is now cached
    with _encoder_rows(vision_model) as calls:
        got = _results(cached.classify(requests))
    assert calls == []
    want = [
        _results(LlamaGuardClassifier(vision_model, threshold=0.0).classify([r]))[0]
        for r in requests
    ]
    for a, b in zip(got, want, strict=True):
        assert a.raw_output is not None and a.raw_output.startswith("unsafe")
        assert (a.raw_output, a.categories) == (b.raw_output, b.categories)
        assert a.unsafe_logit == pytest.approx(b.unsafe_logit, abs=TOLERANCE)


def test_the_cache_is_bounded_and_zero_disables_it(vision_model: LoadedModel) -> None:
    a, b = _requests(vision_model, [("a", TEXTS[0]), ("b", TEXTS[0])])
    one = LlamaGuardClassifier(vision_model, vision_cache_size=1)
    none = LlamaGuardClassifier(vision_model, vision_cache_size=0)
    with _encoder_rows(vision_model) as calls:
        for request in (a, b, b, a):
            one.classify([request])
    assert calls == [1, 1, 1]  # b hit; a was evicted by b
    with _encoder_rows(vision_model) as calls:
        none.classify([a])
        none.classify([a])
    assert calls == [1, 1]


def test_the_cache_key_names_the_image_and_the_model(vision_model: LoadedModel) -> None:
    """Same sha256 under another revision is a different entry."""
    from dataclasses import replace

    (request,) = _requests(vision_model, [("a", TEXTS[0])])
    classifier: Any = LlamaGuardClassifier(vision_model, vision_cache_size=4)
    classifier.classify([request])
    classifier._loaded = replace(
        vision_model, info=replace(vision_model.info, revision="another-revision")
    )
    with _encoder_rows(vision_model) as calls:
        classifier.classify([request])
    assert calls == [1]
