"""Stage ``publish``: what each consumed record ends as.

The one home of "work → records":
- a decided event → its verdict (with the policy's action), plus a ReviewRequest on the
  review topic when the decision sends it to people (band or audit);
- a failure → its dead letter, plus a fallback verdict when the tenant's ``on_error``
  is ``allow`` or ``block`` (so downstream consumers waiting for a verdict never wait
  for ever).
All records of one consumed record go out together: the produce step forwards (and
commits) the input only once every one of them is acknowledged, and exactly-once mode
writes them in the input's transaction. ``Publish`` runs inline in the consumer thread
(``RunTask``) right before the produce step; ``build_verdict`` is the pure part.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pydantic_core
import structlog

from schemas.dead_letter import ErrorStage
from schemas.verdict import ImageVerdict, ModelInfo, SourcePosition, VerdictEvent
from worker.engine.types import Classifier
from worker.hashbank.matching import image_hash_fields
from worker.logs import PerEventLogger, enabled_for
from worker.metrics import Metrics
from worker.policy import (
    EventIdentity,
    PolicyStore,
    fallback_verdict,
    peek_identity,
    review_request_value,
)
from worker.streaming.dead_letters import dead_letter_record
from worker.streaming.types import Message, OutgoingRecord
from worker.work import DecidedEvent, Failure, Work

# Room for the record's own overhead (key, headers, batch framing) under the limit.
RECORD_OVERHEAD_BYTES = 1024

log = structlog.get_logger(__name__)
verdict_log = PerEventLogger(log)


class Publish:
    """Work → the records it ends as (see the module's docstring)."""

    def __init__(
        self,
        *,
        output_topic: str,
        dlq_topic: str,
        review_topic: str,
        worker_id: str,
        max_record_bytes: int,
        vision: Classifier,
        text: Classifier | None,
        policy: PolicyStore,
        metrics: Metrics,
    ) -> None:
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._review_topic = review_topic
        self._policy = policy
        self._worker_id = worker_id
        self._max_record_bytes = max_record_bytes
        self._metrics = metrics
        # Per event otherwise: the models' identities, and the verdict counters.
        self._vision_info = _model_info(vision)
        self._text_info = _model_info(text) if text is not None else None
        self._verdict_counters = {
            verdict: metrics.verdicts.labels(verdict=verdict)
            for verdict in ("safe", "unsafe", "error")
        }
        self._review_counters = {
            reason: metrics.review_records.labels(reason=reason) for reason in ("band", "audit")
        }

    def __call__(self, message: Message[Work]) -> list[OutgoingRecord]:
        work = message.payload
        if isinstance(work, DecidedEvent):
            return self._verdict_records(message, work)
        if isinstance(work, Failure):
            failure = work
        else:  # unreachable by construction; if a refactor breaks that, still dead-letter it
            failure = Failure(
                ErrorStage.CLASSIFY, "InternalError", f"unfinished {type(work).__name__}"
            )
        records = [self._dead_letter_record(message, failure)]
        fallback = self._fallback_verdict(message, failure)
        if fallback is not None:
            records.append(fallback)
        return records

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

    def _verdict_records(self, message: Message[Work], work: DecidedEvent) -> list[OutgoingRecord]:
        fetched = work.classified.fetched
        uses_text_model = self._text_info is not None and all(
            request.image is None for request in fetched.requests
        )
        model = self._text_info if uses_text_model and self._text_info else self._vision_info
        latency_s = time.monotonic() - fetched.decoded.consumed_at
        fields = verdict_fields(
            work,
            source={
                "topic": message.partition.topic,
                "partition": message.partition.index,
                "offset": message.offset,
            },
            model=model,
            worker_id=self._worker_id,
            latency_ms=latency_s * 1000,
            processed_at=datetime.now(UTC),
        )
        self._verdict_counters[fields["verdict"]].inc()
        self._metrics.end_to_end_seconds.observe(latency_s)
        if enabled_for(log, logging.INFO):
            verdict_log.get().info(
                "verdict",
                event_id=fields["event_id"],
                conversation_id=fields["conversation_id"],
                verdict=fields["verdict"],
                action=fields["action"],
                unsafe_score=round(fields["unsafe_score"], 4),
                categories=fields["categories"],
                topic=message.partition.topic,
                partition=message.partition.index,
                offset=message.offset,
            )
        key = fields["conversation_id"].encode("utf-8")
        records = [OutgoingRecord(topic=self._output_topic, key=key, value=verdict_json(fields))]
        review = work.decision.review
        if review is not None and message.value is not None:
            self._review_counters[review].inc()
            records.append(
                OutgoingRecord(
                    topic=self._review_topic,
                    key=key,
                    value=review_request_value(
                        VerdictEvent(**fields),
                        message.value,
                        review,
                        max_bytes=self._max_record_bytes - RECORD_OVERHEAD_BYTES,
                    ),
                )
            )
        return records

    def _fallback_verdict(self, message: Message[Work], failure: Failure) -> OutgoingRecord | None:
        """The fallback verdict of a dead-lettered event whose tenant's ``on_error`` asks
        for one; None otherwise, and for records too broken to name their event."""
        identity = (
            EventIdentity.of(failure.event)
            if failure.event is not None
            else peek_identity(message.value)
        )
        if identity is None:
            return None
        verdict = fallback_verdict(
            self._policy.current,
            identity,
            stage=failure.stage,
            error_class=failure.error_class,
            source=_source(message),
            model=self._vision_info,
            worker_id=self._worker_id,
            latency_ms=0.0,
        )
        if verdict is None:
            return None
        self._verdict_counters["error"].inc()
        if verdict.action is not None:
            self._metrics.actions.labels(action=verdict.action).inc()
        return self._output_record(verdict)

    def _output_record(self, verdict: VerdictEvent) -> OutgoingRecord:
        return OutgoingRecord(
            topic=self._output_topic,
            key=verdict.conversation_id.encode("utf-8"),
            value=verdict.model_dump_json().encode("utf-8"),
        )


def _source(message: Message[Work]) -> SourcePosition:
    return SourcePosition(
        topic=message.partition.topic, partition=message.partition.index, offset=message.offset
    )


def build_verdict(
    decided: DecidedEvent,
    *,
    source: SourcePosition,
    model: ModelInfo,
    worker_id: str,
    latency_ms: float,
    processed_at: datetime | None = None,
) -> VerdictEvent:
    """The VerdictEvent of a decided event (pure): ``verdict_fields`` validated.

    A conversation with N images was classified as N prompts (one image each); they
    aggregate into one verdict (``worker.engine.aggregate``: unsafe if any is, the max
    score, per category the max score) and the per-image results are kept in ``images``.
    """
    return VerdictEvent(
        **verdict_fields(
            decided,
            source=source.model_dump(),
            model=model,
            worker_id=worker_id,
            latency_ms=latency_ms,
            processed_at=processed_at,
        )
    )


def verdict_fields(
    decided: DecidedEvent,
    *,
    source: dict[str, Any],
    model: ModelInfo,
    worker_id: str,
    latency_ms: float,
    processed_at: datetime | None = None,
) -> dict[str, Any]:
    """Every VerdictEvent field of a decided event, in the schema's order, each value of
    the type the schema holds it as (pure). ``source``: ``SourcePosition``'s fields."""
    classified = decided.classified
    decoded = classified.fetched.decoded
    requests = classified.fetched.requests
    results = classified.results
    overall = decided.overall
    images = [
        ImageVerdict(
            s3_uri=request.prompt.image.s3_uri,
            sha256=request.image.sha256,
            verdict="unsafe" if result.unsafe else "safe",
            categories=list(result.categories),
            unsafe_score=result.unsafe_score,
            category_scores=dict(result.category_scores),
            **image_hash_fields(request.image.hashes, classified.fetched.match_of(index)),
        )
        for index, (request, result) in enumerate(zip(requests, results, strict=True))
        if request.prompt.image is not None and request.image is not None
    ]
    first_prompt = decoded.prompts[0]
    decision = decided.decision
    event = decoded.event
    return {
        "schema_version": 1,
        "event_id": event.event_id,
        "conversation_id": event.conversation_id,
        "tenant_id": event.tenant_id,
        "verdict": "unsafe" if overall.unsafe else "safe",
        "categories": list(overall.categories),
        "unsafe_score": float(overall.unsafe_score),
        "classified_role": first_prompt.assessed_role,
        "images": images,
        "model": model,
        "policy_hash": first_prompt.policy_hash,
        "source": source,
        "worker_id": worker_id,
        "latency_ms": max(float(latency_ms), 0.0),
        "processed_at": processed_at or datetime.now(UTC),
        "category_scores": {key: float(score) for key, score in decided.category_scores.items()},
        "action": decision.action,
        "reasons": list(decision.reasons),
        "would_action": decision.would_action,
        "policy": decoded.profile.ref,
        "error": None,
    }


def verdict_json(fields: dict[str, Any]) -> bytes:
    """``VerdictEvent(**fields).model_dump_json()`` without building the model.

    Validating a verdict costs ~4× serialising it (key patterns, bounds, the fallback
    rule), and ``verdict_fields`` already holds each value as the schema would: its
    JSON is the same bytes (tests/pipeline/test_verdict_fast_path.py), for a quarter of
    the consumer thread's time the model took.
    """
    return pydantic_core.to_json(fields)


def _model_info(classifier: Classifier) -> ModelInfo:
    info = classifier.model_info
    return ModelInfo(id=info.id, revision=info.revision)
