"""Dead-letter records: the consumed record byte for byte plus error headers."""

from __future__ import annotations

from typing import Any

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
) -> OutgoingRecord:
    """The dead letter for ``message``: same key, value and headers, plus the
    ``DeadLetterHeaders``.

    ``guardstream.*`` headers of an earlier dead-lettering (a replayed record
    that failed again) are replaced, not duplicated; ``guardstream.replay.count``
    is kept so the replay tool can refuse records that keep failing.
    Pure: no I/O.
    """
    dead = DeadLetterHeaders.model_validate(
        {
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
    )
    headers = strip_guardstream_headers(message.headers, keep_replay_count=True)
    return OutgoingRecord(
        topic=dlq_topic,
        key=message.key,
        value=message.value,
        headers=headers + tuple(dead.to_kafka_headers()),
    )
