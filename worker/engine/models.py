"""The worker's classifiers, loaded from plain settings: the vision model, maybe a text model.

The worker maps its own configuration onto ``ModelSettings``; the engine does not read
``worker.config``.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.engine.loading import LoadedModel, load_text_model, load_vision_model
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.types import Classifier
from worker.engine.verdict_cache import CachingClassifier
from worker.images.types import TilingSpec
from worker.prompt import PromptFormat


@dataclass(frozen=True)
class ModelSettings:
    """What ``load_models`` needs. ``vision_cache_size`` applies to the vision model only
    (text models take no images); ``verdict_cache_size`` 0 leaves the verdict cache out;
    ``prefix_cache_size`` (policy prefixes' KV caches for text-only prompts) applies to
    each model."""

    model: str
    model_revision: str | None = None
    text_model: str | None = None
    text_model_revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    unsafe_threshold: float = 0.5
    category_max_new_tokens: int = 12
    max_batch_size: int | None = None
    vision_cache_size: int = 0
    verdict_cache_size: int = 0
    prefix_cache_size: int = 0


@dataclass(frozen=True)
class Models:
    """The loaded classifiers: the vision model, and optionally a text model."""

    vision: Classifier
    tiling: TilingSpec
    text: Classifier | None = None
    text_format: PromptFormat = PromptFormat.LG3_8B


def load_models(settings: ModelSettings) -> Models:
    """Load the vision model (and the text model when one is set).

    Each classifier is wrapped in the verdict cache unless ``verdict_cache_size`` is 0.
    """
    loaded = load_vision_model(
        settings.model,
        revision=settings.model_revision,
        dtype=settings.dtype,
        device=settings.device,
    )
    vision = _classifier(loaded, settings, settings.vision_cache_size)
    text = None
    if settings.text_model is not None:
        loaded = load_text_model(
            settings.text_model,
            revision=settings.text_model_revision,
            dtype=settings.dtype,
            device=settings.device,
        )
        text = _classifier(loaded, settings, vision_cache_size=0)
    return Models(
        vision=_cached(vision, settings),
        tiling=vision.tiling_spec(),
        text=_cached(text, settings) if text is not None else None,
        text_format=text.prompt_format if text is not None else PromptFormat.LG3_8B,
    )


def _classifier(
    loaded: LoadedModel, settings: ModelSettings, vision_cache_size: int
) -> LlamaGuardClassifier:
    return LlamaGuardClassifier(
        loaded,
        threshold=settings.unsafe_threshold,
        category_max_new_tokens=settings.category_max_new_tokens,
        max_batch_size=settings.max_batch_size,
        vision_cache_size=vision_cache_size,
        prefix_cache_size=settings.prefix_cache_size,
    )


def _cached(classifier: Classifier, settings: ModelSettings) -> Classifier:
    if not settings.verdict_cache_size:
        return classifier
    return CachingClassifier(classifier, settings.verdict_cache_size)
