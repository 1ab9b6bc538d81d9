"""Per-category scores: the batched teacher-forced step equals an unbatched forward.

The fast path feeds ``unsafe \\n S`` to every row of a prefilled batch (from its KV
cache); the reference runs one uncached forward over the processor's inputs for
prompt + ``\\n\\nunsafe\\nS``. Both give the first category number's distribution,
restricted to the active keys and renormalised; scores = P(unsafe) × that.
"""

from __future__ import annotations

import random
from typing import Any

from engine_helpers import (
    REPORT,
    TEXTS,
    event,
    reference_image,
    requests_for,
    user,
    varied_conversations,
)

from schemas.conversation import category_number
from worker.engine import token_ids
from worker.engine.answers import category_scores, unsafe_probability
from worker.engine.loading import LoadedModel
from worker.engine.reference import ReferenceClassifier
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.types import ClassificationResult
from worker.prompt.build import build_prompts
from worker.prompt.types import Prompt

TOLERANCE = 1e-4
POLICIES: list[dict[str, Any] | None] = [
    None,
    {"categories": {"S1": "Violent Crimes.", "S3": "Sex Crimes.", "S10": "Hate."}},
    {"excluded_category_keys": ["S2", "S11"]},
]


def _reference_scores(
    reference: ReferenceClassifier, prompt: Prompt, image: Any
) -> tuple[float, dict[str, float]]:
    """(P(unsafe), per-key scores) from two unbatched, uncached forward passes."""
    answer = reference.answer_logits(prompt.text, image)
    score = unsafe_probability(float(answer[token_ids.SAFE]), float(answer[token_ids.UNSAFE]))
    numbers = reference.category_logits(prompt.text, image)
    number_ids = token_ids.category_number_ids(reference.loaded.tokenizer)
    logits = {key: float(numbers[number_ids[key]]) for key in prompt.category_keys}
    return score, dict(category_scores(score, logits, prompt.category_keys))


def _compare(
    reference: ReferenceClassifier,
    prompts: list[Prompt],
    images: list[Any],
    results: list[Any],
) -> tuple[float, float]:
    """Max |Δ| of the conditional distribution and of the scores, over all prompts."""
    worst_distribution = worst_score = 0.0
    for prompt, image, result in zip(prompts, images, results, strict=True):
        assert isinstance(result, ClassificationResult), result
        ours = dict(result.category_scores)
        assert list(ours) == sorted(prompt.category_keys, key=category_number)
        assert abs(sum(ours.values()) - result.unsafe_score) <= 1e-12
        ref_score, theirs = _reference_scores(reference, prompt, image)
        for key in prompt.category_keys:
            conditional = ours[key] / result.unsafe_score
            worst_distribution = max(worst_distribution, abs(conditional - theirs[key] / ref_score))
            worst_score = max(worst_score, abs(ours[key] - theirs[key]))
    return worst_distribution, worst_score


def test_the_reference_step_tokenizes_as_the_model_writes(vision_model: LoadedModel) -> None:
    (prompt,) = build_prompts(event([user("hi")]), text_model=False)
    inputs = ReferenceClassifier(vision_model).inputs(prompt.text + "\n\nunsafe\nS", None)
    tail = inputs["input_ids"][0, -4:].tolist()
    assert tail == [token_ids.DOUBLE_NEWLINE, *token_ids.CATEGORY_PREFIX]


def test_vision_category_step_matches_an_unbatched_forward(vision_model: LoadedModel) -> None:
    conversations = varied_conversations(18, POLICIES)
    prompts, pils = [], []
    for ev, images in conversations:
        for prompt in build_prompts(ev, text_model=False):
            prompts.append(prompt)
            pils.append(reference_image(prompt, images))
    all_images = {uri: img for _, images in conversations for uri, img in images.items()}
    requests = requests_for(vision_model, prompts, all_images)
    order = list(range(len(requests)))
    random.Random(5).shuffle(order)  # image and text-only rows interleaved, varied lengths
    shuffled = LlamaGuardClassifier(vision_model, max_batch_size=4).classify(
        [requests[i] for i in order]
    )
    results: list[Any] = [None] * len(requests)
    for position, index in enumerate(order):
        results[index] = shuffled[position]

    reference = ReferenceClassifier(vision_model)
    distribution, score = _compare(reference, prompts, pils, results)
    with_image = sum(p.image is not None for p in prompts)
    line = (
        f"category step, vision fp32: max |Δ P(first category)| = {distribution:.2e}, "
        f"max |Δ score| = {score:.2e} over {len(prompts)} prompts ({with_image} with an "
        "image), batches of 4 vs an unbatched forward over prompt + \\n\\nunsafe\\nS"
    )
    REPORT.append(line)
    print(line)
    assert 0 < with_image < len(prompts)
    assert {p.category_keys for p in prompts} >= {("S1", "S3", "S10")}
    assert distribution <= TOLERANCE and score <= TOLERANCE


def test_text_category_step_matches_an_unbatched_forward(text_model: LoadedModel) -> None:
    events = [ev for ev, images in varied_conversations(24, POLICIES) if not images]
    events += [event([user(t)]) for t in TEXTS[:6]]
    prompts = [p for ev in events for p in build_prompts(ev, text_model=True)]
    results = LlamaGuardClassifier(text_model, max_batch_size=5).classify(
        requests_for(text_model, prompts, {})
    )
    distribution, score = _compare(
        ReferenceClassifier(text_model), prompts, [None] * len(prompts), results
    )
    line = (
        f"category step, text (8B format) fp32: max |Δ P(first category)| = "
        f"{distribution:.2e}, max |Δ score| = {score:.2e} over {len(prompts)} prompts"
    )
    REPORT.append(line)
    print(line)
    assert distribution <= TOLERANCE and score <= TOLERANCE


def test_the_step_changes_no_other_field(vision_model: LoadedModel) -> None:
    """Scores, categories and the decoded text are bit-identical with the step off."""
    conversations = varied_conversations(8, POLICIES)
    prompts = [p for ev, _ in conversations for p in build_prompts(ev, text_model=False)]
    images = {uri: img for _, imgs in conversations for uri, img in imgs.items()}
    requests = requests_for(vision_model, prompts, images)
    for threshold in (0.0, 0.5):  # every row decodes; some rows decode
        on = LlamaGuardClassifier(vision_model, threshold=threshold, max_batch_size=4)
        off = LlamaGuardClassifier(
            vision_model, threshold=threshold, max_batch_size=4, score_categories=False
        )
        with_step, without = on.classify(requests), off.classify(requests)
        for a, b in zip(with_step, without, strict=True):
            assert isinstance(a, ClassificationResult) and isinstance(b, ClassificationResult)
            assert a.category_scores and not b.category_scores
            assert (a.unsafe_score, a.unsafe, a.categories, a.raw_output) == (
                b.unsafe_score,
                b.unsafe,
                b.categories,
                b.raw_output,
            )
            assert (a.safe_logit, a.unsafe_logit) == (b.safe_logit, b.unsafe_logit)
