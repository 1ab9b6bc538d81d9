"""Reference mode: the model-card usage, and its inputs."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import torch
from engine_helpers import event, image_item, noise_image, sha, user

from worker.engine import token_ids
from worker.engine.loading import LoadedModel
from worker.engine.reference import ReferenceClassifier
from worker.engine.types import ClassificationFailure, ClassificationRequest, ClassificationResult
from worker.engine.vision_inputs import prepared_image_from_processor
from worker.prompt.build import build_prompts


def test_prepared_image_inputs_equal_processor_inputs(vision_model: LoadedModel) -> None:
    (prompt,) = build_prompts(event([user("Look", image_item("a"))]), text_model=False)
    pil = noise_image(4, 900, 300)
    prepared = prepared_image_from_processor(vision_model.processor, pil, sha(pil))
    reference = ReferenceClassifier(vision_model)
    from_pil = reference.inputs(prompt.text, pil)
    from_prepared = reference.inputs(prompt.text, prepared)
    assert from_pil.keys() == from_prepared.keys()
    for name in from_pil:
        assert torch.equal(from_pil[name], from_prepared[name].to(from_pil[name].dtype)), name
    # One <|begin_of_text|>: the template's, none added by the tokenizer.
    assert from_pil["input_ids"][0, :2].tolist() == [token_ids.BEGIN_OF_TEXT, 128006]


class _ScriptedModel:
    """Stands in for the model: generate() answers a scripted token list."""

    def __init__(self, answer: list[int]) -> None:
        self.answer = answer

    def generate(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        answer = torch.tensor([self.answer])
        logits = []
        for _ in self.answer:
            step = torch.zeros(1, 128256)
            step[0, token_ids.SAFE], step[0, token_ids.UNSAFE] = 0.5, 2.5
            logits.append(step)
        return SimpleNamespace(sequences=torch.cat([input_ids, answer], 1), logits=logits)


def test_reference_parses_generated_text(vision_model: LoadedModel) -> None:
    policy = {"excluded_category_keys": ["S10"]}
    (prompt,) = build_prompts(event([user("hi")], policy=policy), text_model=False)
    tokenizer = vision_model.tokenizer
    answer = [*tokenizer.encode("\n\nunsafe\nS1,S10,S3", add_special_tokens=False), 128009]
    scripted = ReferenceClassifier(replace(vision_model, model=_ScriptedModel(answer)))
    result = scripted.classify_one(prompt, None)
    assert result.unsafe
    assert result.categories == ("S1", "S3")  # S10 is excluded by the policy
    assert (result.safe_logit, result.unsafe_logit) == (0.5, 2.5)
    assert result.raw_output == "\n\nunsafe\nS1,S10,S3"


def test_reference_never_raises_for_one_request(vision_model: LoadedModel) -> None:
    prompts = build_prompts(event([user("<|image|> two tags", image_item("a"))]), text_model=False)
    prompts += build_prompts(event([user("hello")]), text_model=False)
    pil = noise_image(1, 100, 100)
    requests = [
        ClassificationRequest(
            prompts[0], prepared_image_from_processor(vision_model.processor, pil, sha(pil))
        ),
        ClassificationRequest(prompts[1], None),
    ]
    outcomes = ReferenceClassifier(vision_model).classify(requests)
    assert len(outcomes) == 2
    # The model-card path is not injection-proof: a '<|image|>' in text breaks it.
    assert isinstance(outcomes[0], ClassificationFailure)
    # A random model rarely answers 'safe'/'unsafe': a result or an unparseable failure.
    assert isinstance(outcomes[1], ClassificationResult) or (
        outcomes[1].error_class == "UnparseableOutput"
    )
