"""Stage ``publish``: what each consumed record ends as — its verdict, or its dead letter.

The one home of "work → records". ``Publish`` runs inline in the consumer thread
(``RunTask``) right before the produce step; ``build_verdict`` is the pure part.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import structlog

from schemas.dead_letter import ErrorStage
from schemas.verdict import ImageVerdict, ModelInfo, SourcePosition, VerdictEvent
from worker.engine.aggregate import aggregate
from worker.engine.types import Classifier
from worker.logs import enabled_for
from worker.metrics import Metrics
from worker.streaming.dead_letters import dead_letter_record
from worker.streaming.types import Message, OutgoingRecord
from worker.work import ClassifiedEvent, Failure, Work

log = structlog.get_logger(__name__)


class Publish:
    """Work → the records it ends as: a verdict, or a dead letter."""

    def __init__(
        self,
        *,
        output_topic: str,
        dlq_topic: str,
        worker_id: str,
        max_record_bytes: int,
        vision: Classifier,
        text: Classifier | None,
        metrics: Metrics,
    ) -> None:
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._worker_id = worker_id
        self._max_record_bytes = max_record_bytes
        self._metrics = metrics
        # Per event otherwise: the models' identities, and the verdict counters.
        self._vision_info = _model_info(vision)
        self._text_info = _model_info(text) if text is not None else None
        self._verdict_counters = {
            verdict: metrics.verdicts.labels(verdict=verdict) for verdict in ("safe", "unsafe")
        }

    def __call__(self, message: Message[Work]) -> list[OutgoingRecord]:
        work = message.payload
        if isinstance(work, ClassifiedEvent):
            return [self._verdict_record(message, work)]
        if isinstance(work, Failure):
            failure = work
        else:  # unreachable by construction; if a refactor breaks that, still dead-letter it
            failure = Failure(
                ErrorStage.CLASSIFY, "InternalError", f"unfinished {type(work).__name__}"
            )
        return [self._dead_letter_record(message, failure)]

    def _dead_letter_record(self, message: Message[Work], failure: Failure) -> OutgoingRecord:
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
        return dead_letter_record(
            message,
            failure.stage,
            failure.error_class,
            failure.message,
            failure.attempts,
            self._worker_id,
            self._dlq_topic,
            self._max_record_bytes,
        )

    def _verdict_record(self, message: Message[Work], work: ClassifiedEvent) -> OutgoingRecord:
        decoded = work.fetched.decoded
        uses_text_model = self._text_info is not None and all(
            request.image is None for request in work.fetched.requests
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
            worker_id=self._worker_id,
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
            topic=self._output_topic,
            key=verdict.conversation_id.encode("utf-8"),
            value=verdict.model_dump_json().encode("utf-8"),
        )


def build_verdict(
    classified: ClassifiedEvent,
    *,
    source: SourcePosition,
    model: ModelInfo,
    worker_id: str,
    latency_ms: float,
    processed_at: datetime | None = None,
) -> VerdictEvent:
    """The VerdictEvent of a classified event (pure).

    A conversation with N images was classified as N prompts (one image each); they
    aggregate into one verdict (``worker.engine.aggregate``) and the per-image results
    are kept in ``images``.
    """
    decoded = classified.fetched.decoded
    requests = classified.fetched.requests
    results = classified.results
    overall = aggregate(results)
    images = [
        ImageVerdict(
            s3_uri=request.prompt.image.s3_uri,
            sha256=request.image.sha256,
            verdict="unsafe" if result.unsafe else "safe",
            categories=list(result.categories),
            unsafe_score=result.unsafe_score,
        )
        for request, result in zip(requests, results, strict=True)
        if request.prompt.image is not None and request.image is not None
    ]
    first_prompt = decoded.prompts[0]
    return VerdictEvent(
        event_id=decoded.event.event_id,
        conversation_id=decoded.event.conversation_id,
        tenant_id=decoded.event.tenant_id,
        verdict="unsafe" if overall.unsafe else "safe",
        categories=list(overall.categories),
        unsafe_score=overall.unsafe_score,
        classified_role=first_prompt.assessed_role,
        images=images,
        model=model,
        policy_hash=first_prompt.policy_hash,
        source=source,
        worker_id=worker_id,
        latency_ms=max(latency_ms, 0.0),
        processed_at=processed_at or datetime.now(UTC),
    )


def _model_info(classifier: Classifier) -> ModelInfo:
    info = classifier.model_info
    return ModelInfo(id=info.id, revision=info.revision)
