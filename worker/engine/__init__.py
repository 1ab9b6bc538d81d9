"""Llama Guard 3 inference: loading, injection-proof tokenization, batched scoring.

Knows nothing of Kafka or S3: prompts and prepared images in, results out.
"""

from worker.engine.aggregate import AggregateVerdict, aggregate
from worker.engine.loading import LoadedModel, load_text_model, load_vision_model
from worker.engine.lru import CacheObserver, LruCache
from worker.engine.models import Models, ModelSettings, load_models
from worker.engine.reference import ReferenceClassifier
from worker.engine.scoring import LlamaGuardClassifier
from worker.engine.tiny import write_tiny_model
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    Classifier,
    ModelInfo,
    Outcome,
)
from worker.engine.verdict_cache import CachingClassifier
from worker.engine.vision_inputs import prepared_image_from_processor

__all__ = [
    "AggregateVerdict",
    "CacheObserver",
    "CachingClassifier",
    "ClassificationFailure",
    "ClassificationRequest",
    "ClassificationResult",
    "Classifier",
    "LlamaGuardClassifier",
    "LoadedModel",
    "LruCache",
    "ModelInfo",
    "ModelSettings",
    "Models",
    "Outcome",
    "ReferenceClassifier",
    "aggregate",
    "load_models",
    "load_text_model",
    "load_vision_model",
    "prepared_image_from_processor",
    "write_tiny_model",
]
