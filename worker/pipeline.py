"""The one module that composes the worker: Kafka → decode → fetch → batch → classify →
publish → commit.

Each stage is a plain function from ``worker.stages``; each runs in a streaming step
from ``worker.streaming``:

    RunTask(decode)                      consumer thread
    RunTaskInThreads(fetch + tile)       FETCH_CONCURRENCY threads, MAX_IN_FLIGHT events
    RunBatchesInThread(classify)         one model thread, MAX_BATCH_SIZE / _WAIT_MS / _TILES
    RunTask(to_records)                  verdict or dead-letter record
    Produce → CommitOffsets              at-least-once (commit after the broker's ack)
    TransactionalProduceAndCommit        exactly-once (records + offsets, one transaction)

A full step raises ``MessageRejected`` and the consumer loop pauses its partitions,
so GPU time never blocks polling and memory stays bounded.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from schemas.conversation import EventLimits, ImageContent
from schemas.dead_letter import ErrorStage
from schemas.verdict import ModelInfo, SourcePosition
from worker.config import Settings
from worker.engine.types import Classifier
from worker.health import HealthState
from worker.images.decode import ImageLimits, decode_image
from worker.images.fetcher import ImageFetcher
from worker.images.preprocess import prepare_image
from worker.images.types import PreparedImage, TilingSpec
from worker.logs import enabled_for
from worker.metrics import Metrics
from worker.prompt import PromptFormat
from worker.stages import classify_batch, decode_event, prepare_event
from worker.streaming import (
    Message,
    OffsetTracker,
    OutgoingRecord,
    ProcessingStep,
    StreamProcessor,
    kafka_commit,
)
from worker.streaming.dead_letters import dead_letter_record
from worker.streaming.steps import (
    CommitOffsets,
    Produce,
    RunBatchesInThread,
    RunTask,
    RunTaskInThreads,
    TransactionalProduceAndCommit,
)
from worker.verdicts import build_verdict
from worker.work import ClassifiedEvent, DecodedEvent, Failure, PreparedEvent, Work

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Models:
    """The loaded classifiers: the vision model, and optionally a text model."""

    vision: Classifier
    tiling: TilingSpec
    text: Classifier | None = None
    text_format: PromptFormat = PromptFormat.LG3_8B


class ImagePreparer:
    """S3 object → tiles, counting bytes and time; called from the fetch threads."""

    def __init__(
        self, fetcher: ImageFetcher, tiling: TilingSpec, metrics: Metrics, *, draft: bool
    ) -> None:
        self._fetcher = fetcher
        self._tiling = tiling
        self._metrics = metrics
        self._draft = draft

    def __call__(self, item: ImageContent) -> PreparedImage:
        started = time.monotonic()
        fetched = self._fetcher.fetch(item)
        self._metrics.fetched_bytes.inc(fetched.size)
        image = decode_image(
            fetched.data, self._fetcher.limits, draft_for=self._tiling if self._draft else None
        )
        prepared = prepare_image(image, self._tiling, fetched.sha256)
        self._metrics.fetch_seconds.observe(time.monotonic() - started)
        return prepared


class RecordBuilder:
    """Work → the one record it ends as: a verdict, or a dead letter."""

    def __init__(self, settings: Settings, models: Models, metrics: Metrics) -> None:
        self._settings = settings
        self._models = models
        self._metrics = metrics
        # Per event otherwise: the models' identities, and the verdict counters.
        self._vision_info = _model_info(models.vision)
        self._text_info = _model_info(models.text) if models.text is not None else None
        self._verdict_counters = {
            verdict: metrics.verdicts.labels(verdict=verdict) for verdict in ("safe", "unsafe")
        }

    def __call__(self, message: Message[Work]) -> list[OutgoingRecord]:
        work = message.payload
        settings = self._settings
        if isinstance(work, ClassifiedEvent):
            return [self._verdict_record(message, work)]
        if isinstance(work, Failure):
            failure = work
        else:  # unreachable by construction; if a refactor breaks that, still dead-letter it
            failure = Failure(
                ErrorStage.CLASSIFY, "InternalError", f"unfinished {type(work).__name__}"
            )
        self._metrics.dead_letters.labels(stage=failure.stage.value).inc()
        log.warning(
            "dead letter",
            event_id=failure.event.event_id if failure.event else None,
            conversation_id=failure.event.conversation_id if failure.event else None,
            stage=failure.stage.value,
            error_class=failure.error_class,
            error=failure.message,
            topic=message.partition.topic,
            partition=message.partition.index,
            offset=message.offset,
        )
        return [
            dead_letter_record(
                message,
                failure.stage,
                failure.error_class,
                failure.message,
                failure.attempts,
                settings.worker_id,
                settings.dlq_topic,
                settings.max_record_bytes,
            )
        ]

    def _verdict_record(self, message: Message[Work], work: ClassifiedEvent) -> OutgoingRecord:
        decoded = work.prepared.decoded
        uses_text_model = self._text_info is not None and all(
            request.image is None for request in work.prepared.requests
        )
        model = self._text_info if uses_text_model and self._text_info else self._vision_info
        latency_s = time.monotonic() - decoded.consumed_at
        verdict = build_verdict(
            work,
            source=SourcePosition(
                topic=message.partition.topic,
                partition=message.partition.index,
                offset=message.offset,
            ),
            model=model,
            worker_id=self._settings.worker_id,
            latency_ms=latency_s * 1000,
            processed_at=datetime.now(UTC),
        )
        self._verdict_counters[verdict.verdict].inc()
        self._metrics.end_to_end_seconds.observe(latency_s)
        if enabled_for(log, logging.INFO):
            log.info(
                "verdict",
                event_id=verdict.event_id,
                conversation_id=verdict.conversation_id,
                verdict=verdict.verdict,
                unsafe_score=round(verdict.unsafe_score, 4),
                categories=verdict.categories,
                topic=message.partition.topic,
                partition=message.partition.index,
                offset=message.offset,
            )
        return OutgoingRecord(
            topic=self._settings.output_topic,
            key=verdict.conversation_id.encode("utf-8"),
            value=verdict.model_dump_json().encode("utf-8"),
        )


def _model_info(classifier: Classifier) -> ModelInfo:
    info = classifier.model_info
    return ModelInfo(id=info.id, revision=info.revision)


def build_steps(
    settings: Settings,
    models: Models,
    prepare_image_fn: Callable[[ImageContent], PreparedImage],
    terminal: ProcessingStep[Sequence[OutgoingRecord]],
    metrics: Metrics,
    *,
    wakeup: threading.Event | None = None,
) -> ProcessingStep[bytes | None]:
    """The step chain from the consumed value to the terminal (publish + commit) step.

    ``wakeup`` is set by the fetch and model threads when they finish something
    (give the same event to the ``StreamProcessor``). Events without images, and
    failures, skip the fetch threads: there is nothing to fetch.
    """
    limits = EventLimits(
        max_messages=settings.max_messages,
        max_text_chars=settings.max_text_chars,
        max_total_text_chars=settings.max_total_text_chars,
        max_images=settings.max_images,
    )
    text_model = models.text is not None

    def decode(message: Message[bytes | None]) -> Work:
        metrics.events_consumed.inc()
        return decode_event(
            message.value, limits=limits, text_model=text_model, text_format=models.text_format
        )

    def fetch(message: Message[Work]) -> Work:
        work = message.payload
        if not isinstance(work, DecodedEvent):
            return work
        if not _has_images(work):
            return prepare_event(work, prepare_image_fn)  # nothing to fetch: no I/O, no logs
        # Log lines from the image stage (retries) name the event they are about.
        with structlog.contextvars.bound_contextvars(
            event_id=work.event.event_id,
            conversation_id=work.event.conversation_id,
            topic=message.partition.topic,
            partition=message.partition.index,
            offset=message.offset,
        ):
            return prepare_event(work, prepare_image_fn)

    def classify(batch: list[Work]) -> list[Work]:
        prompts = sum(len(w.requests) for w in batch if isinstance(w, PreparedEvent))
        started = time.monotonic()
        output = classify_batch(batch, models.vision, models.text)
        if prompts:
            metrics.batch_size.observe(prompts)
            metrics.classify_seconds.observe(time.monotonic() - started)
        return output

    to_records = RunTask(RecordBuilder(settings, models, metrics), terminal)
    batches: RunBatchesInThread[Work, Work] = RunBatchesInThread(
        classify,
        to_records,
        max_batch_size=settings.max_batch_size,
        max_batch_wait_ms=settings.max_batch_wait_ms,
        cost=_batch_cost,
        max_batch_cost=settings.max_batch_tiles,
        thread_name="guardstream-model",
        wakeup=wakeup,
    )
    fetches: RunTaskInThreads[Work, Work] = RunTaskInThreads(
        fetch,
        batches,
        max_in_flight=settings.max_in_flight,
        max_workers=settings.fetch_concurrency,
        thread_name_prefix="guardstream-fetch",
        inline=_runs_inline,
        wakeup=wakeup,
    )
    return RunTask(decode, fetches)


def _has_images(work: DecodedEvent) -> bool:
    return any(prompt.image is not None for prompt in work.prompts)


def _runs_inline(message: Message[Work]) -> bool:
    """Whether the fetch step can run in the consumer thread: nothing to fetch."""
    work = message.payload
    return not isinstance(work, DecodedEvent) or not _has_images(work)


def _batch_cost(work: Work) -> int:
    # Failures and decoded-only work cost nothing on the model.
    return work.tiles if isinstance(work, PreparedEvent) else 0


def load_models(settings: Settings) -> Models:
    """Load the vision model (and the text model when configured) per the settings.

    Each classifier is wrapped in the verdict cache unless ``VERDICT_CACHE_SIZE`` is 0;
    the vision model keeps ``VISION_CACHE_SIZE`` images' encoder outputs.
    """
    from worker.engine import (
        CachingClassifier,
        LlamaGuardClassifier,
        load_text_model,
        load_vision_model,
    )

    if settings.model is None:
        raise ValueError("GUARDSTREAM_MODEL is not set: pass --model PATH_OR_HUB_ID")
    vision = LlamaGuardClassifier(
        load_vision_model(
            settings.model,
            revision=settings.model_revision,
            dtype=settings.dtype,
            device=settings.device,
        ),
        threshold=settings.unsafe_threshold,
        category_max_new_tokens=settings.category_max_new_tokens,
        max_batch_size=settings.max_batch_size,
        vision_cache_size=settings.vision_cache_size,
    )
    text = None
    if settings.text_model is not None:
        text = LlamaGuardClassifier(
            load_text_model(
                settings.text_model,
                revision=settings.text_model_revision,
                dtype=settings.dtype,
                device=settings.device,
            ),
            threshold=settings.unsafe_threshold,
            category_max_new_tokens=settings.category_max_new_tokens,
            max_batch_size=settings.max_batch_size,
        )

    def cached(classifier: Classifier) -> Classifier:
        if not settings.verdict_cache_size:
            return classifier
        return CachingClassifier(classifier, settings.verdict_cache_size)

    return Models(
        vision=cached(vision),
        tiling=vision.tiling_spec(),
        text=cached(text) if text is not None else None,
        text_format=text.prompt_format if text is not None else PromptFormat.LG3_8B,
    )


def kafka_connection(settings: Settings) -> Any:
    from worker.streaming.kafka_config import KafkaConnection

    return KafkaConnection(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"guardstream-{settings.worker_id}",
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_plain_username=settings.kafka_sasl_username,
        sasl_plain_password=_secret(settings.kafka_sasl_password),
        ssl_cafile=_path(settings.kafka_ssl_cafile),
        ssl_certfile=_path(settings.kafka_ssl_certfile),
        ssl_keyfile=_path(settings.kafka_ssl_keyfile),
        ssl_password=_secret(settings.kafka_ssl_password),
    )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _path(value: Any) -> str | None:
    return str(value) if value is not None else None


class Worker:
    """``guardstream run``: owns the clients, the step chain and the health state."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        *,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        s3_client: Any = None,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        from worker.images.fetcher import RetryPolicy, make_s3_client
        from worker.images.uri import BucketAllowlist
        from worker.streaming.kafka_config import consumer_kwargs, producer_kwargs

        self.settings = settings
        self.metrics = metrics or Metrics()
        self.health = health or HealthState()
        self.health.model_loaded = True
        for role, classifier in (("vision", models.vision), ("text", models.text)):
            if classifier is not None:
                # The engine's caches report to the metrics through a callback.
                attach = getattr(classifier, "set_cache_observer", None)
                if attach is not None:
                    attach(self._count_cache_lookup)
                info = classifier.model_info
                self.metrics.model_info.labels(
                    role=role,
                    model_id=info.id,
                    revision=info.revision,
                    dtype=info.dtype,
                    device=info.device,
                ).set(1)

        conn = kafka_connection(settings)
        self.consumer = KafkaConsumer(
            **consumer_kwargs(
                conn,
                group_id=settings.group_id,
                group_instance_id=settings.group_instance_id,
                isolation_level="read_committed" if settings.exactly_once else "read_uncommitted",
                max_poll_records=settings.max_poll_records,
                max_poll_interval_ms=settings.max_poll_interval_ms,
                session_timeout_ms=settings.session_timeout_ms,
            )
        )
        self.producer = KafkaProducer(
            **producer_kwargs(
                conn,
                max_request_size=settings.max_record_bytes,
                transactional_id=settings.effective_transactional_id
                if settings.exactly_once
                else None,
            )
        )
        s3 = s3_client or make_s3_client(
            settings.s3_endpoint_url,
            settings.s3_region,
            max_pool_connections=settings.fetch_concurrency,
        )
        fetcher = ImageFetcher(
            s3,
            BucketAllowlist(settings.allowed_buckets),
            ImageLimits(
                max_bytes=settings.image_max_bytes,
                max_pixels=settings.image_max_pixels,
                allowed_formats=settings.image_formats,
            ),
            RetryPolicy(
                max_attempts=settings.fetch_max_attempts, max_seconds=settings.fetch_max_seconds
            ),
            on_retry=lambda *_: self.metrics.fetch_retries.inc(),
        )
        preparer = ImagePreparer(
            fetcher, models.tiling, self.metrics, draft=settings.image_draft_decode
        )

        self.tracker = OffsetTracker()
        # Set by the fetch and model threads when they finish work: the consumer
        # loop waits on it while backpressure holds the partitions paused.
        wakeup = threading.Event()
        interval_s = settings.commit_interval_ms / 1000
        terminal: ProcessingStep[Sequence[OutgoingRecord]]
        if settings.exactly_once:
            terminal = TransactionalProduceAndCommit(
                self.producer,
                self.tracker,
                self.consumer.group_metadata,
                commit_interval_s=interval_s,
            )
            commit = None
        else:
            commit = kafka_commit(self.consumer)
            terminal = Produce(
                self.producer, CommitOffsets(self.tracker, commit, commit_interval_s=interval_s)
            )
        self.processor = StreamProcessor(
            self.consumer,
            [settings.input_topic],
            build_steps(settings, models, preparer, terminal, self.metrics, wakeup=wakeup),
            self.tracker,
            commit=commit,
            producer=self.producer,
            join_timeout_s=settings.shutdown_timeout_s,
            wakeup=wakeup,
        )
        self._last_gauges = 0.0

    def stop(self) -> None:
        self.processor.stop()

    def _count_cache_lookup(self, cache: str, hit: bool) -> None:
        counter = self.metrics.cache_hits if hit else self.metrics.cache_misses
        counter.labels(cache=cache).inc()

    def run(self, until: Callable[[], bool] | None = None, *, handle_signals: bool = True) -> None:
        def tick() -> bool:
            self._observe()
            return until() if until is not None else False

        log.info(
            "worker starting",
            input_topic=self.settings.input_topic,
            group_id=self.settings.group_id,
            exactly_once=self.settings.exactly_once,
            worker_id=self.settings.worker_id,
        )
        # What is alive now (modules, models, clients) lives as long as the loop: keep
        # it out of the collector's full passes, which otherwise walk all of it (some
        # 200,000 objects with torch loaded, ~0.15 s a pass) every few thousand events.
        gc.freeze()
        try:
            self.processor.run(until=tick, handle_signals=handle_signals)
        finally:
            gc.unfreeze()
        log.info("worker stopped", **vars(self.processor.stats))

    def _observe(self) -> None:
        """Once per loop turn: liveness; about once a second: readiness and gauges."""
        self.health.loop_turned()
        now = time.monotonic()
        if now - self._last_gauges < 1.0:
            return
        self._last_gauges = now
        assignment = self.consumer.assignment()
        self.health.consuming = bool(assignment)
        if _broker_connected(self.consumer):
            self.health.broker_ok()
        self.metrics.in_flight.set(self.tracker.in_flight)
        self.metrics.paused_partitions.set(len(self.consumer.paused()))
        for tp in assignment:
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=0)
            except Exception:  # no position yet: nothing to report
                continue
            if position is not None:
                self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(highwater - position, 0)
                )


def _broker_connected(consumer: Any) -> bool:
    # kafka-python has no public "is any broker connected" call.
    try:
        client = consumer._client
        return any(client.connected(broker.node_id) for broker in client.cluster.brokers())
    except Exception:
        return False
