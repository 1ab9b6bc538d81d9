"""The fast path: batched Llama Guard 3 scoring with one forward pass per prompt.

Per micro-batch: image and text-only prompts are split (transformers changes a
text-only row's logits when it shares a batch with image rows), each group sorted by
length and left-padded; one forward pass over prompt + ``\\n\\n`` gives the first
answer token's logits (score: see ``worker.engine.answers``); rows judged unsafe
then decode a few category tokens greedily from the same KV cache. A batch that
fails falls back to one sample at a time, so one malformed sample fails alone; CUDA
out-of-memory halves the batch and retries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import structlog
import torch

from worker.engine import token_ids
from worker.engine.answers import parse_categories, unsafe_probability
from worker.engine.batching import EncodedSample, ModelBatch, build_batch, validate_image
from worker.engine.decoding import decode_after
from worker.engine.exceptions import MalformedRequest
from worker.engine.loading import LoadedModel
from worker.engine.tokenization import PromptTokenizer
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    ModelInfo,
    Outcome,
)
from worker.engine.vision_inputs import tiling_spec_from_processor
from worker.images.types import TilingSpec
from worker.prompt.types import PromptFormat

log = structlog.get_logger(__name__)


class LlamaGuardClassifier:
    """Implements ``Classifier`` for Llama Guard 3 Vision and the 1B/8B text models."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        threshold: float = 0.5,
        category_max_new_tokens: int = 12,
        max_batch_size: int | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self._loaded = loaded
        self._model = loaded.model
        self._tokenizer = loaded.tokenizer
        self._prompt_tokenizer = PromptTokenizer(loaded.tokenizer)
        self.threshold = threshold
        self.category_max_new_tokens = category_max_new_tokens
        self.max_batch_size = max_batch_size
        self._device = torch.device(loaded.info.device)
        self._tiling = tiling_spec_from_processor(loaded.processor) if loaded.is_vision else None
        self._max_aspect_ratio_id = (
            int(loaded.model.config.vision_config.max_aspect_ratio_id) if loaded.is_vision else 0
        )

    @property
    def model_info(self) -> ModelInfo:
        return self._loaded.info

    @property
    def prompt_format(self) -> PromptFormat:
        """The template text-only prompts must follow for this model."""
        return self._loaded.prompt_format

    def tiling_spec(self) -> TilingSpec:
        if self._tiling is None:
            raise ValueError(f"{self.model_info.id} is a text model: it takes no images")
        return self._tiling

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(requests)
        samples: list[EncodedSample] = []
        for index, request in enumerate(requests):
            try:
                samples.append(self.encode(index, request))
            except Exception as exc:
                outcomes[index] = ClassificationFailure.from_exception(exc)
        for group in (
            [s for s in samples if s.image is not None],
            [s for s in samples if s.image is None],
        ):
            group.sort(key=lambda sample: len(sample.input_ids))
            for chunk in _chunks(group, self.max_batch_size):
                for sample, outcome in self._run_resilient(chunk):
                    outcomes[sample.index] = outcome
        done = [outcome for outcome in outcomes if outcome is not None]
        if len(done) != len(requests):
            raise RuntimeError("a request got no outcome")  # a bug here, not a bad sample
        return done

    def encode(self, index: int, request: ClassificationRequest) -> EncodedSample:
        """Validate one request and tokenize it (prompt + ``\\n\\n``); MalformedRequest if bad."""
        prompt = request.prompt
        if prompt.format is not self.prompt_format:
            raise MalformedRequest(
                f"the prompt follows the {prompt.format} template, the model {self.prompt_format}"
            )
        if (prompt.image is None) != (request.image is None):
            raise MalformedRequest("the prompt and the request disagree on carrying an image")
        if request.image is not None:
            if self._tiling is None:
                raise MalformedRequest("a text model cannot take an image")
            try:
                validate_image(
                    request.image,
                    max_tiles=self._tiling.max_tiles,
                    tile_size=self._tiling.tile_size,
                    max_aspect_ratio_id=self._max_aspect_ratio_id,
                )
            except ValueError as exc:
                raise MalformedRequest(str(exc)) from exc
        ids = self._prompt_tokenizer.encode(prompt.segments)
        ids.append(token_ids.DOUBLE_NEWLINE)
        image_positions = [i for i, token in enumerate(ids) if token == token_ids.IMAGE]
        expected = 1 if request.image is not None else 0
        if len(image_positions) != expected:
            raise MalformedRequest(
                f"the prompt holds {len(image_positions)} <|image|> tokens, expected {expected}"
            )
        return EncodedSample(
            index=index,
            input_ids=tuple(ids),
            image=request.image,
            image_position=image_positions[0] if image_positions else None,
            category_keys=prompt.category_keys,
        )

    def _run_resilient(self, chunk: Sequence[EncodedSample]) -> list[tuple[EncodedSample, Outcome]]:
        try:
            return list(zip(chunk, self._score_batch(chunk), strict=True))
        except torch.OutOfMemoryError as exc:
            _free_device_memory()
            if len(chunk) == 1:
                return [(chunk[0], ClassificationFailure.from_exception(exc))]
            half = len(chunk) // 2
            log.warning("batch_out_of_memory_split", batch_size=len(chunk), halves=(half,))
            return self._run_resilient(chunk[:half]) + self._run_resilient(chunk[half:])
        except Exception as exc:
            if _is_fatal_device_error(exc):
                raise
            if len(chunk) == 1:
                return [(chunk[0], ClassificationFailure.from_exception(exc))]
            log.warning(
                "batch_failed_retrying_per_sample",
                batch_size=len(chunk),
                error_class=type(exc).__name__,
            )
            return [pair for sample in chunk for pair in self._run_resilient([sample])]

    def _score_batch(self, chunk: Sequence[EncodedSample]) -> list[Outcome]:
        batch = build_batch(
            chunk, pad_id=token_ids.PAD, device=self._device, pixel_dtype=self._model.dtype
        )
        with torch.inference_mode():
            output = self._model(**batch.model_kwargs(), use_cache=True, logits_to_keep=1)
            pair = output.logits[:, -1, [token_ids.SAFE, token_ids.UNSAFE]].float().cpu().tolist()
            scores = [unsafe_probability(safe, unsafe) for safe, unsafe in pair]
            unsafe_rows = [row for row, score in enumerate(scores) if score >= self.threshold]
            decoded = self._decode_categories(batch, output.past_key_values, unsafe_rows)
        outcomes: list[Outcome] = []
        for row, sample in enumerate(chunk):
            safe_logit, unsafe_logit = pair[row]
            raw = decoded.get(row)
            outcomes.append(
                ClassificationResult(
                    unsafe_score=scores[row],
                    unsafe=scores[row] >= self.threshold,
                    categories=parse_categories(raw, sample.category_keys) if raw else (),
                    safe_logit=safe_logit,
                    unsafe_logit=unsafe_logit,
                    raw_output=raw,
                )
            )
        return outcomes

    def _decode_categories(
        self, batch: ModelBatch, cache: Any, rows: Sequence[int]
    ) -> dict[int, str]:
        """Raw answer text (``unsafe\\nS1,...``) of each unsafe row."""
        if not rows:
            return {}
        generated = decode_after(
            self._model,
            batch,
            cache,
            rows,
            first_token=token_ids.UNSAFE,
            max_new_tokens=self.category_max_new_tokens,
            stop_ids=token_ids.STOP_IDS,
            pad_id=token_ids.PAD,
        )
        return {
            row: self._tokenizer.decode(
                [token_ids.UNSAFE, *tokens],
                skip_special_tokens=True,
                clean_up_tokenization_spaces=False,
            )
            for row, tokens in zip(rows, generated, strict=True)
        }


def _chunks(
    samples: Sequence[EncodedSample], size: int | None
) -> Iterator[Sequence[EncodedSample]]:
    if not samples:
        return
    step = size or len(samples)
    for start in range(0, len(samples), step):
        yield samples[start : start + step]


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _is_fatal_device_error(exc: Exception) -> bool:
    """A broken CUDA context fails every later call: crash rather than dead-letter everything."""
    text = str(exc)
    return "CUDA error" in text or "device-side assert" in text
