"""The fast path: batched Llama Guard 3 scoring with one forward pass per prompt.

Per micro-batch: image and text-only prompts are split (transformers changes a
text-only row's logits when it shares a batch with image rows), each group sorted by
length and left-padded; one forward pass over prompt + ``\\n\\n`` gives the first
answer token's logits (score: see ``worker.engine.answers``); one teacher-forced
step over ``unsafe \\n S`` for every row gives the per-category scores; rows judged
unsafe then decode a few category tokens greedily from the same KV cache. A batch that
fails falls back to one sample at a time, so one malformed sample fails alone; CUDA
out-of-memory halves the batch and retries.

Vision once per image: the vision encoder and projector run here, not inside the
model's forward, once per distinct image (``PreparedImage.sha256``) of a batch; the
projected states (all tile slots: padded ones too, since real tiles attend to them in
the encoder and text before ``<|image|>`` attends to every slot) are passed to the
model as ``cross_attention_states``. A bounded LRU of those states on the model's
device lets a repeated image with new text skip the encoder altogether.

Policy prefix once per policy (text-only prompts, ``prefix_cache_size`` > 0): the
prompt's first part, up to ``<BEGIN CONVERSATION>``, is computed once per (model,
revision, format, policy hash, role) and kept in a bounded LRU on the device; text-only
prompts are grouped by prefix and a batch runs only their suffixes from a copy of the
prefix's cache (``worker.engine.prefix``). Scores, category step and decode then run
from that cache as on the plain path.

Longer than the project's ~400 lines on purpose: the batched prefill, the prefix path
and the category step share their padding and cache layout, and read best in one file
(like transformers' model files).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import structlog
import torch

from worker.engine import token_ids
from worker.engine.answers import category_scores, parse_categories, unsafe_probability
from worker.engine.batching import (
    ModelBatch,
    TokenizedSample,
    build_batch,
    build_suffix_batch,
    validate_image,
    vision_inputs,
)
from worker.engine.decoding import decode_after, forced_step_logits
from worker.engine.exceptions import MalformedRequest
from worker.engine.loading import LoadedModel
from worker.engine.lru import CacheObserver, LruCache
from worker.engine.prefix import (
    PrefixEntry,
    PrefixKey,
    batch_cache,
    compute_prefix,
    prefix_key,
    prefix_segments,
    split_length,
)
from worker.engine.tokenization import PromptTokenizer
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    ModelInfo,
    Outcome,
)
from worker.engine.vision_inputs import tiling_spec_from_processor
from worker.images.types import PreparedImage, TilingSpec
from worker.prompt.types import PromptFormat

log = structlog.get_logger(__name__)

# (image sha256, tile count, aspect-ratio id, model id, model revision)
VisionKey = tuple[str, int, int, str, str]


class LlamaGuardClassifier:
    """Implements ``Classifier`` for Llama Guard 3 Vision and the 1B/8B text models."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        threshold: float = 0.5,
        category_max_new_tokens: int = 12,
        max_batch_size: int | None = None,
        vision_cache_size: int = 0,
        cache_observer: CacheObserver | None = None,
        score_categories: bool = True,
        prefix_cache_size: int = 0,
    ) -> None:
        """``vision_cache_size``: images whose projected vision states stay on the device
        (0: none; in-batch duplicates are still encoded once). Each entry holds
        max_tiles × patches × hidden values: ~52 MB for the 11B in bfloat16.

        ``score_categories``: run the per-category step (results then carry
        ``category_scores``); off only for a benchmark's baseline.

        ``prefix_cache_size``: policy prefixes (per policy and assessed role) whose KV
        cache stays on the device for text-only prompts; 0: off, every prompt runs whole.
        One entry holds self-attention layers × 2 × kv_heads × head_dim × prefix tokens
        values (1B, bf16: 32 KiB a token; 8B: 128 KiB)."""
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
        self._vision_cache: LruCache[VisionKey, torch.Tensor] = LruCache(vision_cache_size)
        self._prefix_cache: LruCache[PrefixKey, PrefixEntry] = LruCache(prefix_cache_size)
        self._prefix_ids: LruCache[PrefixKey, tuple[int, ...]] = LruCache(prefix_cache_size)
        self._observer = cache_observer
        self.score_categories = score_categories
        number_ids = token_ids.category_number_ids(loaded.tokenizer)
        self._category_keys = tuple(number_ids)
        self._category_ids = tuple(number_ids.values())

    def set_cache_observer(self, observer: CacheObserver | None) -> None:
        """Called with ``("vision", hit)`` per image row of a batch (hit: no encoder run)."""
        self._observer = observer

    def clear_vision_cache(self) -> None:
        self._vision_cache.clear()

    def clear_prefix_cache(self) -> None:
        self._prefix_cache.clear()
        self._prefix_ids.clear()

    @property
    def prefix_cache(self) -> LruCache[PrefixKey, PrefixEntry]:
        """The policy prefixes' KV entries (read-only use: tests, benchmarks)."""
        return self._prefix_cache

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
        samples: list[TokenizedSample] = []
        for index, request in enumerate(requests):
            try:
                samples.append(self.tokenize_request(index, request))
            except Exception as exc:
                outcomes[index] = ClassificationFailure.from_exception(exc)
        by_prefix: dict[PrefixKey, list[TokenizedSample]] = {}
        plain_text: list[TokenizedSample] = []
        for sample in samples:
            if sample.image is None and sample.prefix_key is not None:
                by_prefix.setdefault(sample.prefix_key, []).append(sample)
            elif sample.image is None:
                plain_text.append(sample)
        groups: list[tuple[list[TokenizedSample], PrefixKey | None]] = [
            ([s for s in samples if s.image is not None], None),
            (plain_text, None),
            *((group, key) for key, group in by_prefix.items()),
        ]
        for group, key in groups:
            if not group:
                continue
            group.sort(key=lambda sample: len(sample.input_ids))
            entry = self._prefix_entry(key, group[0]) if key is not None else None
            if key is not None and entry is None:
                group = [replace(sample, prefix_key=None, prefix_length=0) for sample in group]
            for chunk in _chunks(group, self.max_batch_size):
                for sample, outcome in self._run_resilient(chunk, entry):
                    outcomes[sample.index] = outcome
        done = [outcome for outcome in outcomes if outcome is not None]
        if len(done) != len(requests):
            raise RuntimeError("a request got no outcome")  # a bug here, not a bad sample
        return done

    def tokenize_request(self, index: int, request: ClassificationRequest) -> TokenizedSample:
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
        ids = self._prompt_tokenizer.tokenize(prompt.segments)
        ids.append(token_ids.DOUBLE_NEWLINE)
        image_positions = [i for i, token in enumerate(ids) if token == token_ids.IMAGE]
        expected = 1 if request.image is not None else 0
        if len(image_positions) != expected:
            raise MalformedRequest(
                f"the prompt holds {len(image_positions)} <|image|> tokens, expected {expected}"
            )
        key, length = self._split(prompt, ids) if request.image is None else (None, 0)
        return TokenizedSample(
            index=index,
            input_ids=tuple(ids),
            image=request.image,
            image_position=image_positions[0] if image_positions else None,
            category_keys=prompt.category_keys,
            prefix_key=key if length else None,
            prefix_length=length,
        )

    def _split(self, prompt: Any, ids: Sequence[int]) -> tuple[PrefixKey | None, int]:
        """The prompt's prefix key and length when its ids start with its policy prefix's
        (off, or no prefix found, or a tokenizer merge across the boundary: (None, 0))."""
        if not self._prefix_cache.enabled:
            return None, 0
        key = prefix_key(prompt, self.model_info)
        prefix_ids = self._prefix_ids.get(key)
        if prefix_ids is None:
            segments = prefix_segments(prompt)
            if segments is None:
                return None, 0
            prefix_ids = tuple(self._prompt_tokenizer.tokenize(segments))
            self._prefix_ids.put(key, prefix_ids)
        length = split_length(ids, prefix_ids)
        return (key, length) if length else (None, 0)

    def _prefix_entry(self, key: PrefixKey, sample: TokenizedSample) -> PrefixEntry | None:
        """The cached prefix of ``key`` (computed from ``sample``'s first tokens on a miss);
        None when computing it failed: the group then runs whole (the plain path)."""
        ids = sample.input_ids[: sample.prefix_length]
        entry = self._prefix_cache.get(key)
        hit = entry is not None and entry.ids == ids
        if entry is None or not hit:
            try:
                entry = compute_prefix(self._model, ids, self._device)
            except Exception as exc:
                if _is_fatal_device_error(exc):
                    raise
                if isinstance(exc, torch.OutOfMemoryError):
                    self._prefix_cache.clear()
                    _free_device_memory()
                log.warning("prefix_failed_running_whole", error_class=type(exc).__name__)
                return None
            self._prefix_cache.put(key, entry)
        if self._observer is not None:
            self._observer("prefix", hit)
        return entry

    def _run_resilient(
        self, chunk: Sequence[TokenizedSample], prefix: PrefixEntry | None = None
    ) -> list[tuple[TokenizedSample, Outcome]]:
        try:
            # (without a prefix, the one-argument call that tests and fault drills wrap)
            outcomes = (
                self._score_batch(chunk) if prefix is None else self._score_batch(chunk, prefix)
            )
            return list(zip(chunk, outcomes, strict=True))
        except torch.OutOfMemoryError as exc:
            self._vision_cache.clear()  # memory for the retry beats cached encoder runs
            self._prefix_cache.clear()  # (the entry in use stays alive for the retry)
            _free_device_memory()
            if len(chunk) == 1:
                return [(chunk[0], ClassificationFailure.from_exception(exc))]
            half = len(chunk) // 2
            log.warning("batch_out_of_memory_split", batch_size=len(chunk), halves=(half,))
            return self._run_resilient(chunk[:half], prefix) + self._run_resilient(
                chunk[half:], prefix
            )
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
            return [pair for sample in chunk for pair in self._run_resilient([sample], prefix)]

    def _score_batch(
        self, chunk: Sequence[TokenizedSample], prefix: PrefixEntry | None = None
    ) -> list[Outcome]:
        if prefix is None:
            batch = build_batch(chunk, pad_id=token_ids.PAD, device=self._device, pixels=False)
        else:
            batch = build_suffix_batch(
                chunk, prefix_length=len(prefix.ids), pad_id=token_ids.PAD, device=self._device
            )
        with torch.inference_mode():
            kwargs: dict[str, Any] = batch.model_kwargs()
            if prefix is not None:
                kwargs["past_key_values"] = batch_cache(self._model, prefix, len(chunk))
            if batch.cross_attention_mask is not None:
                images = [sample.image for sample in chunk if sample.image is not None]
                kwargs["cross_attention_states"] = self.vision_states(images)
            output = self._model(**kwargs, use_cache=True, logits_to_keep=1)
            pair = output.logits[:, -1, [token_ids.SAFE, token_ids.UNSAFE]].float().cpu().tolist()
            scores = [unsafe_probability(safe, unsafe) for safe, unsafe in pair]
            numbers = self._category_logits(batch, output.past_key_values)
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
                    category_scores=category_scores(scores[row], numbers[row], sample.category_keys)
                    if numbers
                    else (),
                )
            )
        return outcomes

    def _category_logits(self, batch: ModelBatch, cache: Any) -> list[dict[str, float]]:
        """Per row, each key's number-token logit after ``unsafe \\n S`` (empty when off).

        The cache comes back holding the prefill only."""
        if not self.score_categories:
            return []
        logits = forced_step_logits(
            self._model, batch, cache, token_ids.CATEGORY_PREFIX, self._category_ids
        )
        return [
            dict(zip(self._category_keys, row, strict=True))
            for row in logits.float().cpu().tolist()
        ]

    def vision_states(self, images: Sequence[PreparedImage]) -> torch.Tensor:
        """``cross_attention_states`` for one image per row: (rows × max_tiles, patches, hidden).

        Each distinct image is encoded at most once; cached ones not at all.
        """
        info = self.model_info
        keys = [
            (image.sha256, image.num_tiles, image.aspect_ratio_id, info.id, info.revision)
            for image in images
        ]
        found: dict[VisionKey, torch.Tensor] = {}
        todo: dict[VisionKey, PreparedImage] = {}
        for key, image in zip(keys, images, strict=True):
            if key in found or key in todo:
                hit = True  # a duplicate within the batch
            else:
                cached = self._vision_cache.get(key)
                hit = cached is not None
                if cached is not None:
                    found[key] = cached
                else:
                    todo[key] = image
            if self._observer is not None:
                self._observer("vision", hit)
        if todo:
            encoded = self._encode_images(list(todo.values()))
            for row, key in enumerate(todo):
                # A row of a larger tensor would keep all of it alive in the cache.
                states = encoded[row] if len(todo) == 1 else encoded[row].clone()
                found[key] = states
                self._vision_cache.put(key, states)
        rows = torch.stack([found[key] for key in keys])  # (rows, max_tiles, patches, hidden)
        return rows.reshape(-1, rows.shape[-2], rows.shape[-1])

    def _encode_images(self, images: Sequence[PreparedImage]) -> torch.Tensor:
        """What ``MllamaModel.forward`` computes from pixels: (n, max_tiles, patches, hidden)."""
        inner = self._model.model  # MllamaModel: vision_model, multi_modal_projector
        inputs = vision_inputs(images, device=self._device, pixel_dtype=self._model.dtype)
        hidden = inner.vision_model(
            pixel_values=inputs.pixel_values,
            aspect_ratio_ids=inputs.aspect_ratio_ids,
            aspect_ratio_mask=inputs.aspect_ratio_mask,
        ).last_hidden_state  # (n, 1, max_tiles, patches, vision_output_dim)
        states = inner.multi_modal_projector(hidden)
        return states.reshape(len(images), states.shape[2], states.shape[3], states.shape[4])

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
    samples: Sequence[TokenizedSample], size: int | None
) -> Iterator[Sequence[TokenizedSample]]:
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
