"""Dead-letter records: the consumed record byte for byte plus error headers."""

from __future__ import annotations

from typing import Any

from kafka.record.default_records import DefaultRecordBatchBuilder

from schemas import dead_letter as dl
from schemas.dead_letter import (
    HEADER_PREFIX,
    REPLAY_COUNT,
    DeadLetterHeaders,
    ErrorStage,
    truncate_message,
)
from worker.streaming.types import Headers, Message, OutgoingRecord


def strip_guardstream_headers(headers: Headers, *, keep_replay_count: bool) -> Headers:
    """Drop ``guardstream.*`` headers, keeping the input's own headers in order."""
    return tuple(
        (name, value)
        for name, value in headers
        if not name.startswith(HEADER_PREFIX) or (keep_replay_count and name == REPLAY_COUNT)
    )


def dead_letter_record(
    message: Message[Any],
    stage: ErrorStage | str,
    error_class: str,
    error_message: str,
    attempts: int,
    worker_id: str,
    dlq_topic: str,
    max_record_bytes: int | None = None,
) -> OutgoingRecord:
    """The dead letter for ``message``: same key, value and headers, plus the
    ``DeadLetterHeaders``.

    ``guardstream.*`` headers of an earlier dead-lettering (a replayed record
    that failed again) are replaced, not duplicated; ``guardstream.replay.count``
    is kept so the replay tool can refuse records that keep failing.

    With ``max_record_bytes`` (the producer's ``max_request_size``), a dead letter
    that would be larger (a record near the broker's limit plus our headers) leaves
    out the value, then the original headers, then the key, until it fits, and names
    what it left out in ``guardstream.omitted``; the producer would otherwise refuse
    it, and the worker would stop on the same record after every restart.
    Pure: no I/O.
    """
    fields: dict[str, Any] = {
        dl.STAGE: ErrorStage(stage),
        dl.ERROR_CLASS: error_class,
        dl.ERROR_MESSAGE: truncate_message(error_message),
        dl.ORIGINAL_TOPIC: message.partition.topic,
        dl.ORIGINAL_PARTITION: message.partition.index,
        dl.ORIGINAL_OFFSET: message.offset,
        dl.ORIGINAL_TIMESTAMP: message.timestamp,
        dl.ATTEMPTS: attempts,
        dl.WORKER: worker_id,
    }
    key, value = message.key, message.value
    headers = strip_guardstream_headers(message.headers, keep_replay_count=True)
    omitted: list[str] = []
    while True:
        dead = DeadLetterHeaders.model_validate({**fields, dl.OMITTED: ",".join(omitted) or None})
        record = OutgoingRecord(
            topic=dlq_topic, key=key, value=value, headers=headers + tuple(dead.to_kafka_headers())
        )
        if max_record_bytes is None or record_size(record) <= max_record_bytes:
            return record
        if value:
            omitted.append(f"value={len(value)}")
            value = b""
        elif any(not name.startswith(HEADER_PREFIX) for name, _ in headers):
            kept = strip_guardstream_headers(headers, keep_replay_count=False)
            omitted.append(f"headers={len(kept)}")
            headers = tuple(h for h in headers if h[0] == REPLAY_COUNT)
        elif key:
            omitted.append(f"key={len(key)}")
            key = None
        else:  # only our own headers left: cannot happen with a sane limit
            return record


def record_size(record: OutgoingRecord) -> int:
    """kafka-python's upper bound for the record (what it checks against
    ``max_request_size`` before sending)."""
    return int(
        DefaultRecordBatchBuilder.estimate_size_in_bytes(
            record.key, record.value, list(record.headers)
        )
    )
