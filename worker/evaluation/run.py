"""The one module that calls the worker's own code: model loading, the image stage and
the stage functions (decode → fetch → classify), called as ``guardstream run`` calls
them, so an evaluation measures exactly what the worker would publish.

Everything the evaluation needs from ``worker.pipeline`` / ``worker.stages`` goes
through here, so when those modules move only this file follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from schemas.conversation import ImageContent
from schemas.dead_letter import ErrorStage
from schemas.verdict import ModelInfo, SourcePosition
from worker.config import Settings
from worker.engine.models import Models
from worker.evaluation.batching import micro_batches
from worker.evaluation.images import DirectoryObjects
from worker.evaluation.types import DeadLetteredEvent, LabelledLine, ScoredEvent
from worker.images.fetcher import ObjectGetter, make_s3_client
from worker.images.types import PreparedImage
from worker.metrics import Metrics
from worker.pipeline import event_limits, image_loader
from worker.pipeline import load_models as _load_models
from worker.policy import PolicySet, builtin_policy
from worker.stages import build_verdict, classify_batch, decide_event, decode_event, fetch_images
from worker.work import ClassifiedEvent, DecodedEvent, Failure, FetchedEvent, Work

# Verdicts of an evaluation name this as their source; the offset is the line number.
SOURCE_TOPIC = "guardstream-eval"

LoadImage = Callable[[ImageContent], PreparedImage]


def load_models(settings: Settings) -> Models:
    """The worker's model loading: the same classifiers, caches and thresholds."""
    return _load_models(settings)


def image_objects(settings: Settings, images_dir: Path | None) -> ObjectGetter:
    """Where image bytes come from: ``images_dir`` (offline), else S3 as the worker reads it."""
    if images_dir is not None:
        return DirectoryObjects(images_dir)
    return make_s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        max_pool_connections=settings.fetch_concurrency,
    )


def image_stage(settings: Settings, models: Models, objects: ObjectGetter) -> LoadImage:
    """The worker's image stage: its fetcher (allowlist, limits, retry budget) and tiling."""
    return image_loader(settings, objects, models.tiling, Metrics())


class EventRunner:
    """Labelled lines → one ``ScoredEvent`` or ``DeadLetteredEvent`` each, in input order.

    Lines are taken ``MAX_IN_FLIGHT`` at a time: decoded (with the tenant profiles of
    ``policy``, as the worker's decode stage resolves them), their images fetched on
    ``FETCH_CONCURRENCY`` threads, classified in micro-batches cut by ``MAX_BATCH_SIZE``
    and ``MAX_BATCH_TILES`` as the worker cuts them (so batching and the caches are
    exercised as in production), then decided by the profile.

    ``policy`` None: the built-in profile, as the worker runs without a policy file; the
    records then carry no action. ``threshold``: the unsafe threshold the records'
    ``predicted_unsafe`` uses (None: the verdict's own, ``UNSAFE_THRESHOLD``).
    """

    def __init__(
        self,
        settings: Settings,
        models: Models,
        load_image: LoadImage,
        *,
        policy: PolicySet | None = None,
        threshold: float | None = None,
    ) -> None:
        self._settings = settings
        self._models = models
        self._load_image = load_image
        self._policy = policy or builtin_policy(settings.unsafe_threshold)
        self._with_actions = policy is not None
        self._threshold = threshold
        self._limits = event_limits(settings)
        self._vision_info = _model_info(models)
        self._text_info = _model_info(models, text=True) if models.text is not None else None

    def run(
        self, lines: Iterable[LabelledLine], on_done: Callable[[int], None] | None = None
    ) -> Iterator[ScoredEvent | DeadLetteredEvent]:
        """``on_done(n)`` is called as each group of ``n`` events is finished."""
        settings = self._settings
        chunk_size = max(settings.max_in_flight, settings.max_batch_size)
        source = iter(lines)
        with ThreadPoolExecutor(
            max_workers=settings.fetch_concurrency, thread_name_prefix="guardstream-eval-fetch"
        ) as pool:
            while chunk := list(islice(source, chunk_size)):
                yield from self._run_chunk(chunk, pool, on_done or (lambda _n: None))

    def _run_chunk(
        self, chunk: list[LabelledLine], pool: ThreadPoolExecutor, on_done: Callable[[int], None]
    ) -> Iterator[ScoredEvent | DeadLetteredEvent]:
        decoded: list[Work] = [
            decode_event(
                line.value,
                limits=self._limits,
                text_model=self._models.text is not None,
                text_format=self._models.text_format,
                policy=self._policy,
            )
            for line in chunk
        ]
        fetches = {
            index: pool.submit(fetch_images, work, self._load_image)
            for index, work in enumerate(decoded)
            if isinstance(work, DecodedEvent) and any(p.image is not None for p in work.prompts)
        }
        work: list[Work] = [
            fetches[index].result()
            if index in fetches
            else fetch_images(item, self._load_image)
            if isinstance(item, DecodedEvent)
            else item
            for index, item in enumerate(decoded)
        ]
        ready = [(index, item) for index, item in enumerate(work) if isinstance(item, FetchedEvent)]
        on_done(len(chunk) - len(ready))
        for batch in micro_batches(
            ready,
            max_size=self._settings.max_batch_size,
            cost=lambda entry: entry[1].tiles,
            max_cost=self._settings.max_batch_tiles,
        ):
            results = classify_batch(
                [item for _, item in batch], self._models.vision, self._models.text
            )
            for (index, _), result in zip(batch, results, strict=True):
                work[index] = result
            on_done(len(batch))
        for line, item in zip(chunk, work, strict=True):
            yield self._record(line, item)

    def _record(self, line: LabelledLine, work: Work) -> ScoredEvent | DeadLetteredEvent:
        if isinstance(work, ClassifiedEvent):
            decided = decide_event(work)
            uses_text_model = self._text_info is not None and all(
                request.image is None for request in work.fetched.requests
            )
            verdict = build_verdict(
                decided,
                source=SourcePosition(topic=SOURCE_TOPIC, partition=0, offset=line.line),
                model=self._text_info if uses_text_model and self._text_info else self._vision_info,
                worker_id=self._settings.worker_id,
                latency_ms=0.0,
            )
            decision = decided.decision
            actions = self._with_actions
            return ScoredEvent(
                line=line.line,
                event_id=verdict.event_id,
                label=line.label,
                unsafe_score=verdict.unsafe_score,
                predicted_unsafe=verdict.verdict == "unsafe"
                if self._threshold is None
                else verdict.unsafe_score >= self._threshold,
                categories=tuple(verdict.categories),
                category_scores=dict(verdict.category_scores),
                action=verdict.action if actions else None,
                would_action=verdict.would_action if actions else None,
                review=decision.review if actions else None,
            )
        failure = (
            work
            if isinstance(work, Failure)
            else Failure(ErrorStage.CLASSIFY, "InternalError", f"unfinished {type(work).__name__}")
        )
        return DeadLetteredEvent(
            line=line.line,
            event_id=failure.event.event_id if failure.event is not None else None,
            stage=failure.stage.value,
            error_class=failure.error_class,
            message=failure.message,
        )


def _model_info(models: Models, *, text: bool = False) -> ModelInfo:
    classifier = models.text if text and models.text is not None else models.vision
    info = classifier.model_info
    return ModelInfo(id=info.id, revision=info.revision)
