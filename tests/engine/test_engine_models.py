"""load_models: one classifier per configured model, each built the same way."""

from __future__ import annotations

from pathlib import Path

from worker.engine.models import ModelSettings, load_models
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.verdict_cache import CachingClassifier
from worker.prompt.types import PromptFormat


def test_vision_and_text_models_share_the_settings(
    tiny_vision_dir: Path, tiny_text_dir: Path
) -> None:
    models = load_models(
        ModelSettings(
            model=str(tiny_vision_dir),
            text_model=str(tiny_text_dir),
            dtype="float32",
            device="cpu",
            unsafe_threshold=0.7,
            category_max_new_tokens=5,
            max_batch_size=3,
            vision_cache_size=2,
            verdict_cache_size=4,
            prefix_cache_size=3,
        )
    )
    assert isinstance(models.vision, CachingClassifier)
    assert isinstance(models.text, CachingClassifier)
    vision, text = models.vision.inner, models.text.inner
    assert isinstance(vision, LlamaGuardClassifier) and isinstance(text, LlamaGuardClassifier)
    for classifier in (vision, text):
        assert classifier.threshold == 0.7
        assert classifier.category_max_new_tokens == 5
        assert classifier.max_batch_size == 3
    assert vision._vision_cache.capacity == 2
    assert vision.prefix_cache.capacity == text.prefix_cache.capacity == 3
    assert text._vision_cache.capacity == 0  # a text model takes no images
    assert models.tiling == vision.tiling_spec()
    assert models.text_format is text.prompt_format


def test_without_a_text_model_or_verdict_cache(tiny_vision_dir: Path) -> None:
    models = load_models(ModelSettings(model=str(tiny_vision_dir), dtype="float32", device="cpu"))
    assert isinstance(models.vision, LlamaGuardClassifier)
    assert models.text is None
    assert models.text_format is PromptFormat.LG3_8B
    assert models.vision.prefix_cache.capacity == 0  # the engine's default: off


def test_the_worker_passes_prefix_cache_size(tiny_vision_dir: Path) -> None:
    from worker.config import Settings
    from worker.pipeline import load_models as worker_load_models

    assert Settings().prefix_cache_size == 16
    settings = Settings(model=str(tiny_vision_dir), device="cpu", dtype="float32")
    models = worker_load_models(settings.model_copy(update={"prefix_cache_size": 5}))
    vision = models.vision.inner if isinstance(models.vision, CachingClassifier) else models.vision
    assert isinstance(vision, LlamaGuardClassifier)
    assert vision.prefix_cache.capacity == 5
