"""The one module that composes the worker: Kafka → decode → fetch → batch → classify →
publish → commit.

Each stage lives in ``worker.stages`` (its function and the callable its step runs);
each runs in a streaming step from ``worker.streaming``:

    RunTask(Decode)                      consumer thread
    RunTaskInThreads(Fetch)              FETCH_CONCURRENCY threads, MAX_IN_FLIGHT events
                                         (with banks: hash, look up; a match may skip the model)
    RunBatchesInThread(Classify)         one model thread, MAX_BATCH_SIZE / _WAIT_MS / _TILES
    RunTask(Decide)                      the tenant profile's action (worker.policy)
    RunTask(Publish)                     verdict (+ review record) or dead letter (+ fallback)
    Produce → CommitOffsets              at-least-once (commit after the broker's ack)
    TransactionalProduceAndCommit        exactly-once (records + offsets, one transaction)

A full step raises ``MessageRejected`` and the consumer loop pauses its partitions,
so GPU time never blocks polling and memory stays bounded. The clients come in built
(``worker.clients.connect``); the models too (``load_models``). With known-bad image banks
(``HASH_BANK_TOPIC``) a ``BankFollower`` keeps a ``HashBank`` equal to the bank topic on
its own thread; the consumer loop starts once it has caught up.

About 450 lines: the composition of every stage, client and optional part (banks,
decode budget, policy reload) is kept in this one module, so that the whole worker reads
front to back in one place.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import structlog

from schemas.conversation import EventLimits, ImageContent
from worker.clients import WorkerClients
from worker.config import Settings
from worker.engine.models import Models
from worker.engine.types import Classifier
from worker.hashbank import BankFollower, HashBank, hash_image, match_image
from worker.health import HealthState
from worker.images.budget import DecodeBudget, unmap_large_frees
from worker.images.decode import ImageLimits
from worker.images.fetcher import ImageFetcher, RetryPolicy
from worker.images.load import load_image
from worker.images.types import PreparedImage, TilingSpec
from worker.images.uri import BucketAllowlist
from worker.metrics import Metrics
from worker.policy import PolicyStore
from worker.stages import Classify, Decide, Decode, Fetch, Publish, batch_cost, needs_no_thread
from worker.streaming import (
    OffsetTracker,
    OutgoingRecord,
    ProcessingStep,
    StreamProcessor,
    kafka_commit,
)
from worker.streaming.steps import (
    CommitOffsets,
    Produce,
    RunBatchesInThread,
    RunTask,
    RunTaskInThreads,
    TransactionalProduceAndCommit,
    chain,
)

log = structlog.get_logger(__name__)

#: A consumer call still blocked this long after its own timeout is a wedged client.
STALL_TIMEOUT_S = 60.0
#: The collector's youngest-generation threshold while the loop runs (CPython: 700).
#: Each event allocates a few hundred short-lived objects, so at 700 a young collection
#: ran every few events and walked everything in flight (~15 % of the consumer thread,
#: ``bench overhead``); at 10,000 it runs ~14× less often, for about a megabyte more at peak.
GC_YOUNG_THRESHOLD = 10_000


@dataclass(frozen=True)
class Stages:
    """The stage callables of one worker, in data-flow order (``worker.stages``)."""

    decode: Decode
    fetch: Fetch
    classify: Classify
    decide: Decide
    publish: Publish


def build_stages(
    settings: Settings,
    models: Models,
    load_image: Callable[[ImageContent], PreparedImage],
    metrics: Metrics,
    *,
    policy: PolicyStore | None = None,
    bank: HashBank | None = None,
) -> Stages:
    """Each stage's callable, configured from the settings (see ``build_steps``)."""
    policy = policy or PolicyStore(None, unsafe_threshold=settings.unsafe_threshold)
    return Stages(
        decode=Decode(
            event_limits(settings),
            policy,
            metrics,
            text_model=models.text is not None,
            text_format=models.text_format,
        ),
        fetch=Fetch(
            load_image,
            bank_matcher(settings, bank) if bank is not None else None,
            settings.hash_match_action,
        ),
        classify=Classify(models.vision, models.text, metrics),
        decide=Decide(metrics),
        publish=Publish(
            output_topic=settings.output_topic,
            dlq_topic=settings.dlq_topic,
            review_topic=settings.review_topic,
            worker_id=settings.worker_id,
            max_record_bytes=settings.max_record_bytes,
            vision=models.vision,
            text=models.text,
            policy=policy,
            metrics=metrics,
        ),
    )


def build_steps(
    settings: Settings,
    models: Models,
    load_image: Callable[[ImageContent], PreparedImage],
    terminal: ProcessingStep[Sequence[OutgoingRecord]],
    metrics: Metrics,
    *,
    policy: PolicyStore | None = None,
    wakeup: threading.Event | None = None,
    bank: HashBank | None = None,
) -> ProcessingStep[bytes | None]:
    """The step chain from the consumed value to the terminal (publish + commit) step.

    ``wakeup`` is set by the fetch and model threads when they finish something
    (give the same event to the ``StreamProcessor``). Events without images, and
    failures, skip the fetch threads: there is nothing to fetch. ``policy``: the tenant
    profiles (default: the built-in one, as without a policy file). ``bank``: known-bad
    image banks on (``load_image`` must then hash: ``image_loader(hashing=True)``).
    """
    stages = build_stages(settings, models, load_image, metrics, policy=policy, bank=bank)
    return chain(
        partial(RunTask, stages.decode),
        partial(
            RunTaskInThreads,
            stages.fetch,
            max_in_flight=settings.max_in_flight,
            max_workers=settings.fetch_concurrency,
            thread_name_prefix="guardstream-fetch",
            inline=needs_no_thread,
            wakeup=wakeup,
        ),
        partial(
            RunBatchesInThread,
            stages.classify,
            max_batch_size=settings.max_batch_size,
            max_batch_wait_ms=settings.max_batch_wait_ms,
            cost=batch_cost,
            max_batch_cost=settings.max_batch_tiles,
            thread_name="guardstream-model",
            wakeup=wakeup,
        ),
        partial(RunTask, stages.decide),
        partial(RunTask, stages.publish),
        end=terminal,
    )


def event_limits(settings: Settings) -> EventLimits:
    return EventLimits(
        max_messages=settings.max_messages,
        max_text_chars=settings.max_text_chars,
        max_total_text_chars=settings.max_total_text_chars,
        max_images=settings.max_images,
    )


def bank_matcher(settings: Settings, bank: HashBank) -> Callable[[Any], Any]:
    """An image's hashes → the bank entry they match, per the ``HASH_*`` settings."""
    return partial(match_image, bank, min_quality=settings.hash_min_pdq_quality)


def image_loader(
    settings: Settings, s3: Any, tiling: TilingSpec, metrics: Metrics, *, hashing: bool = False
) -> Callable[[ImageContent], PreparedImage]:
    """S3 object → tiles with the settings' allowlist, limits and retries, counted;
    decodes share one ``DecodeBudget`` (``DECODE_MEMORY_BUDGET_MB``) unless it is 0;
    ``hashing``: with the image's PDQ and MD5 (known-bad image banks)."""
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
        on_retry=lambda *_: metrics.fetch_retries.inc(),
    )

    def observe(size: int, seconds: float) -> None:
        metrics.fetched_bytes.inc(size)
        metrics.fetch_seconds.observe(seconds)

    budget_bytes = settings.effective_decode_budget_bytes
    budget = None
    if budget_bytes is not None:
        budget = DecodeBudget(budget_bytes)
        # Freed pixel blocks go back to the OS, or RSS would not follow the budget.
        unmap_large_frees()
    return partial(
        load_image,
        fetcher,
        spec=tiling,
        draft=settings.image_draft_decode,
        observer=observe,
        budget=budget,
        hasher=hash_image if hashing else None,
    )


def load_models(settings: Settings) -> Models:
    """The engine's models per the worker's settings (``GUARDSTREAM_MODEL`` and friends)."""
    from worker.engine.models import ModelSettings
    from worker.engine.models import load_models as load

    if settings.model is None:
        raise ValueError("GUARDSTREAM_MODEL is not set: pass --model PATH_OR_HUB_ID")
    return load(
        ModelSettings(
            model=settings.model,
            model_revision=settings.model_revision,
            text_model=settings.text_model,
            text_model_revision=settings.text_model_revision,
            dtype=settings.dtype,
            device=settings.device,
            unsafe_threshold=settings.unsafe_threshold,
            category_max_new_tokens=settings.category_max_new_tokens,
            max_batch_size=settings.max_batch_size,
            vision_cache_size=settings.vision_cache_size,
            verdict_cache_size=settings.verdict_cache_size,
            prefix_cache_size=settings.prefix_cache_size,
        )
    )


class Worker:
    """``guardstream run``: the step chain and the consumer loop over built clients,
    and the health state and gauges around them."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        clients: WorkerClients,
        *,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        policy: PolicyStore | None = None,
    ) -> None:
        """``policy``: the tenant profiles; by default loaded from ``POLICY_FILE``
        (``PolicyFileError`` when the file is bad)."""
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.policy = policy or PolicyStore(
            settings.policy_file, unsafe_threshold=settings.unsafe_threshold, metrics=self.metrics
        )
        self.health = health or HealthState()
        self.health.model_loaded = True
        self.consumer = clients.consumer
        self.producer = clients.producer
        for role, classifier in (("vision", models.vision), ("text", models.text)):
            if classifier is not None:
                self._observe_model(role, classifier)

        self.bank: HashBank | None = None
        self.bank_follower: BankFollower | None = None
        if settings.hash_bank_topic:
            if clients.bank_consumer is None:
                raise ValueError("HASH_BANK_TOPIC is set but no bank consumer was given")
            self.bank = HashBank(settings.hash_match_distance, metrics=self.metrics)
            follower = BankFollower(
                clients.bank_consumer, self.bank, settings.hash_bank_topic, metrics=self.metrics
            )
            self.bank_follower = follower
            self.health.hash_bank_ready = lambda: follower.ready
        self._stopping = threading.Event()

        self.tracker = OffsetTracker()
        # Set by the fetch and model threads when they finish work: the consumer
        # loop waits on it while backpressure holds the partitions paused.
        wakeup = threading.Event()
        self._driver = clients.driver
        watchdog = clients.driver.watchdog(self.consumer, STALL_TIMEOUT_S)
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
            commit = kafka_commit(self.consumer, watchdog=watchdog)
            terminal = Produce(
                self.producer, CommitOffsets(self.tracker, commit, commit_interval_s=interval_s)
            )
        load = image_loader(
            settings, clients.s3, models.tiling, self.metrics, hashing=self.bank is not None
        )
        self.processor = StreamProcessor(
            self.consumer,
            [settings.input_topic],
            build_steps(
                settings,
                models,
                load,
                terminal,
                self.metrics,
                policy=self.policy,
                wakeup=wakeup,
                bank=self.bank,
            ),
            self.tracker,
            commit=commit,
            producer=self.producer,
            join_timeout_s=settings.shutdown_timeout_s,
            wakeup=wakeup,
            watchdog=watchdog,
        )
        self._last_gauges = 0.0

    def _observe_model(self, role: str, classifier: Classifier) -> None:
        # The engine's caches report to the metrics through a callback.
        classifier.set_cache_observer(self._count_cache_lookup)
        info = classifier.model_info
        self.metrics.model_info.labels(
            role=role,
            model_id=info.id,
            revision=info.revision,
            dtype=info.dtype,
            device=info.device,
        ).set(1)

    def stop(self) -> None:
        self._stopping.set()
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
        if self.bank_follower is not None:
            self.bank_follower.start()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
        previous_sighup = None
        if handle_signals and threading.current_thread() is threading.main_thread():
            # SIGHUP re-reads the policy file; the handler only takes note (see PolicyStore).
            previous_sighup = signal.signal(
                signal.SIGHUP, lambda _signum, _frame: self.policy.request_reload()
            )
        try:
            if self._wait_for_bank(until):
                self.processor.run(until=tick, handle_signals=handle_signals)
        finally:
            if previous_sighup is not None:
                signal.signal(signal.SIGHUP, previous_sighup)
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            if self.bank_follower is not None:
                self.bank_follower.stop()
        log.info("worker stopped", **vars(self.processor.stats))

    def _wait_for_bank(self, until: Callable[[], bool] | None) -> bool:
        """Until the bank follower caught up (events before that would miss matches);
        False if told to stop meanwhile. Liveness keeps turning."""
        follower = self.bank_follower
        if follower is None:
            return True
        while not follower.wait_caught_up(0.2):
            self.health.loop_turned()
            if follower.error is not None:
                raise RuntimeError("the hash bank follower failed") from follower.error
            if self._stopping.is_set() or (until is not None and until()):
                return False
        log.info("hash bank loaded", entries=len(cast(HashBank, self.bank)))
        return True

    def _observe(self) -> None:
        """Once per loop turn: liveness and the policy file (a cheap check, at most once a
        second); about once a second: readiness and gauges."""
        self.health.loop_turned()
        self.policy.poll()
        now = time.monotonic()
        if now - self._last_gauges < 1.0:
            return
        self._last_gauges = now
        assignment = self.consumer.assignment()
        self.health.consuming = bool(assignment)
        if self._driver.broker_connected(self.consumer):
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
