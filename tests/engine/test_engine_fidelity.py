"""The batched fast path gives the reference (model-card) answer, within 1e-3 logits.

Reference inputs are built by the real MllamaProcessor from the rendered text and the
PIL image, one prompt at a time; the fast path batches prompts of different lengths
and image sizes with left padding and its own tokenization and masks.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from engine_helpers import (
    REPORT,
    TEXTS,
    event,
    image_item,
    noise_image,
    reference_image,
    requests_for,
    user,
    varied_conversations,
)

from worker.engine import token_ids
from worker.engine.answers import unsafe_probability
from worker.engine.loading import LoadedModel
from worker.engine.reference import ReferenceClassifier
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.types import ClassificationResult
from worker.prompt.build import build_prompts

TOLERANCE = 1e-3


def test_fast_path_matches_reference_logits(vision_model: LoadedModel) -> None:
    conversations = varied_conversations(56)
    prompts, pils = [], []
    for ev, images in conversations:
        for prompt in build_prompts(ev, text_model=False):
            prompts.append(prompt)
            pils.append(reference_image(prompt, images))
    all_images = {uri: img for _, images in conversations for uri, img in images.items()}
    requests = requests_for(vision_model, prompts, all_images)
    order = list(range(len(requests)))
    random.Random(3).shuffle(order)  # image and text-only requests interleaved
    fast = LlamaGuardClassifier(vision_model, max_batch_size=8)
    shuffled = fast.classify([requests[i] for i in order])
    results: list[Any] = [None] * len(requests)
    for position, index in enumerate(order):
        results[index] = shuffled[position]

    reference = ReferenceClassifier(vision_model)
    worst = 0.0
    verdicts = []
    for prompt, pil, result in zip(prompts, pils, results, strict=True):
        assert isinstance(result, ClassificationResult), result
        logits = reference.answer_logits(prompt.text, pil)
        ref_safe = float(logits[token_ids.SAFE])
        ref_unsafe = float(logits[token_ids.UNSAFE])
        worst = max(worst, abs(ref_safe - result.safe_logit), abs(ref_unsafe - result.unsafe_logit))
        ref_verdict = unsafe_probability(ref_safe, ref_unsafe) >= fast.threshold
        assert result.unsafe == ref_verdict
        verdicts.append(result.unsafe)

    with_image = sum(p.image is not None for p in prompts)
    line = (
        f"vision fp32: max |Δlogit| = {worst:.2e} over {len(conversations)} conversations, "
        f"{len(prompts)} prompts ({with_image} with an image), batches of 8 vs unbatched "
        f"MllamaProcessor reference; verdicts identical ({sum(verdicts)} unsafe)"
    )
    REPORT.append(line)
    print(line)
    assert len(conversations) >= 50
    assert worst <= TOLERANCE
    assert 0 < sum(verdicts) < len(verdicts), "both verdicts should occur"


def test_text_model_fast_path_matches_reference(text_model: LoadedModel) -> None:
    events = [ev for ev, images in varied_conversations(40) if not images]
    events += [event([user(t)]) for t in TEXTS]
    prompts = [p for ev in events for p in build_prompts(ev, text_model=True)]
    results = LlamaGuardClassifier(text_model, max_batch_size=5).classify(
        [requests_for(text_model, [p], {})[0] for p in prompts]
    )
    reference = ReferenceClassifier(text_model)
    worst = 0.0
    for prompt, result in zip(prompts, results, strict=True):
        assert isinstance(result, ClassificationResult), result
        logits = reference.answer_logits(prompt.text, None)
        worst = max(
            worst,
            abs(float(logits[token_ids.SAFE]) - result.safe_logit),
            abs(float(logits[token_ids.UNSAFE]) - result.unsafe_logit),
        )
    line = f"text (8B format) fp32: max |Δlogit| = {worst:.2e} over {len(prompts)} prompts"
    REPORT.append(line)
    print(line)
    assert worst <= TOLERANCE


@pytest.mark.parametrize("threshold", [0.0])  # every row unsafe: every row decodes
def test_category_decoding_matches_generate(vision_model: LoadedModel, threshold: float) -> None:
    """Cache-reusing batched decoding = generate() after the forced '\\n\\nunsafe'."""
    conversations = varied_conversations(10)
    prompts, images = [], {}
    for ev, imgs in conversations:
        prompts += build_prompts(ev, text_model=False)
        images.update(imgs)
    fast = LlamaGuardClassifier(vision_model, threshold=threshold, max_batch_size=4)
    results = fast.classify(requests_for(vision_model, prompts, images))
    reference = ReferenceClassifier(vision_model)
    tokenizer = vision_model.tokenizer
    for prompt, result in zip(prompts, results, strict=True):
        assert isinstance(result, ClassificationResult)
        inputs = reference.inputs(prompt.text + "\n\nunsafe", reference_image(prompt, images))
        assert inputs["input_ids"][0, -2:].tolist() == [token_ids.DOUBLE_NEWLINE, token_ids.UNSAFE]
        output = vision_model.model.generate(
            **inputs,
            max_new_tokens=fast.category_max_new_tokens,
            do_sample=False,
            pad_token_id=token_ids.PAD,
        )
        generated = output[0, inputs["input_ids"].shape[1] :].tolist()
        for position, token in enumerate(generated):
            if token in token_ids.STOP_IDS:
                generated = generated[:position]
                break
        expected = tokenizer.decode([token_ids.UNSAFE, *generated], skip_special_tokens=True)
        assert result.raw_output == expected


def test_images_change_the_answer(vision_model: LoadedModel) -> None:
    prompts = build_prompts(
        event([user("What is in this picture?", image_item("a"), image_item("b"))]),
        text_model=False,
    )
    images = {
        "s3://bucket/a.png": noise_image(1, 560, 560),
        "s3://bucket/b.png": noise_image(2, 300, 900),
    }
    first, second = LlamaGuardClassifier(vision_model).classify(
        requests_for(vision_model, prompts, images)
    )
    assert isinstance(first, ClassificationResult) and isinstance(second, ClassificationResult)
    assert abs(first.unsafe_logit - second.unsafe_logit) > 1e-3


def test_text_model_category_decoding_matches_generate(text_model: LoadedModel) -> None:
    prompts = [p for t in TEXTS[:5] for p in build_prompts(event([user(t)]), text_model=True)]
    fast = LlamaGuardClassifier(text_model, threshold=0.0, max_batch_size=5)
    results = fast.classify(requests_for(text_model, prompts, {}))
    for prompt, result in zip(prompts, results, strict=True):
        assert isinstance(result, ClassificationResult)
        inputs = ReferenceClassifier(text_model).inputs(prompt.text + "\n\nunsafe", None)
        output = text_model.model.generate(
            **inputs,
            max_new_tokens=fast.category_max_new_tokens,
            do_sample=False,
            pad_token_id=token_ids.PAD,
        )
        generated = output[0, inputs["input_ids"].shape[1] :].tolist()
        stops = [i for i, t in enumerate(generated) if t in token_ids.STOP_IDS]
        generated = generated[: stops[0]] if stops else generated
        expected = text_model.tokenizer.decode(
            [token_ids.UNSAFE, *generated],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        assert result.raw_output == expected


@pytest.mark.slow
def test_vision_heavy_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Real-size tiles (patch 14, 4 x 1601 patches); same answers both ways."""
    from worker.engine.loading import load_vision_model
    from worker.engine.tiny import write_tiny_model

    directory = write_tiny_model(tmp_path_factory.mktemp("heavy"), "vision", vision_heavy=True)
    loaded = load_vision_model(str(directory), device="cpu")
    assert loaded.model.config.vision_config.patch_size == 14
    prompts = build_prompts(event([user("What is this?", image_item("a"))]), text_model=False)
    images = {"s3://bucket/a.png": noise_image(9, 700, 500)}
    (result,) = LlamaGuardClassifier(loaded).classify(requests_for(loaded, prompts, images))
    assert isinstance(result, ClassificationResult)
    logits = ReferenceClassifier(loaded).answer_logits(prompts[0].text, images["s3://bucket/a.png"])
    assert abs(float(logits[token_ids.UNSAFE]) - result.unsafe_logit) <= TOLERANCE
