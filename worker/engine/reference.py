"""Reference mode: the model-card usage, one prompt at a time (fidelity tests, benchmarks).

The processor builds the inputs from the rendered prompt text and the image,
``generate(max_new_tokens=20)`` answers greedily, and the text is parsed. The prompt
text is tokenized the way ``processor.apply_chat_template(..., tokenize=True)`` does,
without adding a second ``<|begin_of_text|>`` (the model card's two-step snippet gets
a duplicate one from tokenizers whose post-processor adds it). This mode uses the
Hugging Face tokenizer as is, so it is *not* injection-proof.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from PIL.Image import Image

from worker.engine import token_ids
from worker.engine.answers import parse_answer, unsafe_probability
from worker.engine.loading import LoadedModel
from worker.engine.lru import CacheObserver
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    ModelInfo,
    Outcome,
)
from worker.images.types import PreparedImage
from worker.prompt.types import Prompt

ReferenceImage = Image | PreparedImage | None


class ReferenceClassifier:
    """Implements ``Classifier`` the slow, obvious way."""

    def __init__(self, loaded: LoadedModel, *, max_new_tokens: int = 20) -> None:
        self._loaded = loaded
        self._model = loaded.model
        self.max_new_tokens = max_new_tokens
        self._device = torch.device(loaded.info.device)

    @property
    def model_info(self) -> ModelInfo:
        return self._loaded.info

    @property
    def loaded(self) -> LoadedModel:
        return self._loaded

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """No caches here: nothing to report."""

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for request in requests:
            try:
                outcomes.append(self.classify_one(request.prompt, request.image))
            except Exception as exc:
                outcomes.append(ClassificationFailure.from_exception(exc))
        return outcomes

    def classify_one(self, prompt: Prompt, image: ReferenceImage) -> ClassificationResult:
        inputs = self.inputs(prompt.text, image)
        prompt_length = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=token_ids.PAD,
                output_logits=True,
                return_dict_in_generate=True,
            )
        generated = output.sequences[0, prompt_length:].tolist()
        text = self._loaded.tokenizer.decode(
            generated, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        unsafe, categories = parse_answer(text, prompt.category_keys)
        safe_logit, unsafe_logit = math.nan, math.nan
        score = 1.0 if unsafe else 0.0
        # The score of the step that said safe/unsafe, when one did.
        for step, token in enumerate(generated):
            if token in (token_ids.SAFE, token_ids.UNSAFE):
                logits = output.logits[step][0]
                safe_logit = float(logits[token_ids.SAFE])
                unsafe_logit = float(logits[token_ids.UNSAFE])
                score = unsafe_probability(safe_logit, unsafe_logit)
                break
        return ClassificationResult(
            unsafe_score=score,
            unsafe=unsafe,
            categories=categories,
            safe_logit=safe_logit,
            unsafe_logit=unsafe_logit,
            raw_output=text,
        )

    def answer_logits(self, text: str, image: ReferenceImage) -> torch.Tensor:
        """Logits (vocab,) of the first answer token: one forward pass of the processor's
        inputs plus the ``\\n\\n`` the model emits first, extended as ``generate()`` does."""
        return self.next_token_logits(text, image, (token_ids.DOUBLE_NEWLINE,))

    def category_logits(self, text: str, image: ReferenceImage) -> torch.Tensor:
        """Logits (vocab,) of the first category's number: one forward pass over the prompt
        plus ``\\n\\nunsafe\\nS``."""
        return self.next_token_logits(
            text, image, (token_ids.DOUBLE_NEWLINE, *token_ids.CATEGORY_PREFIX)
        )

    def next_token_logits(
        self, text: str, image: ReferenceImage, answer: Sequence[int]
    ) -> torch.Tensor:
        """Logits (vocab,) after the processor's inputs plus the ``answer`` tokens, in one
        unbatched forward pass (no cache)."""
        inputs = self.inputs(text, image)
        extra = torch.tensor([list(answer)], device=self._device)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], 1)
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(extra)], 1)
        if "cross_attention_mask" in inputs:
            mask = inputs["cross_attention_mask"]
            last = mask[:, -1:].expand(-1, len(answer), -1, -1)
            inputs["cross_attention_mask"] = torch.cat([mask, last], 1)
        with torch.inference_mode():
            output = self._model(**inputs, logits_to_keep=1)
        return output.logits[0, -1].float().cpu()

    def inputs(self, text: str, image: ReferenceImage) -> dict[str, torch.Tensor]:
        """Model inputs for one prompt, built by the Hugging Face processor/tokenizer."""
        processor = self._loaded.processor
        if processor is None:
            if image is not None:
                raise ValueError("a text model takes no image")
            inputs = self._loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        elif isinstance(image, PreparedImage):
            inputs = _processor_inputs_from_prepared(processor, text, image)
        elif image is None:
            inputs = processor(text=text, return_tensors="pt", add_special_tokens=False)
        else:
            inputs = processor(
                text=text, images=[[image]], return_tensors="pt", add_special_tokens=False
            )
        return {name: value.to(self._device) for name, value in dict(inputs).items()}


def _processor_inputs_from_prepared(
    processor: Any, text: str, image: PreparedImage
) -> dict[str, torch.Tensor]:
    """What ``processor(text=, images=)`` returns, with an already prepared image."""
    from transformers.models.mllama.processing_mllama import (
        convert_sparse_cross_attention_mask_to_dense,
        get_cross_attention_token_mask,
    )

    tokenized = processor.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    ids = tokenized["input_ids"][0].tolist()
    max_tiles = int(image.pixel_values.shape[0])
    token_mask = [get_cross_attention_token_mask(ids, processor.image_token_id)]
    cross = convert_sparse_cross_attention_mask_to_dense(
        token_mask, num_tiles=[[image.num_tiles]], max_num_tiles=max_tiles, length=len(ids)
    )
    aspect_ratio_mask = torch.zeros((1, 1, max_tiles), dtype=torch.long)
    aspect_ratio_mask[0, 0, : image.num_tiles] = 1
    return {
        "input_ids": tokenized["input_ids"],
        "attention_mask": tokenized["attention_mask"],
        "cross_attention_mask": torch.from_numpy(cross),
        "pixel_values": image.pixel_values[None, None],
        "aspect_ratio_ids": torch.tensor([[image.aspect_ratio_id]], dtype=torch.long),
        "aspect_ratio_mask": aspect_ratio_mask,
    }
