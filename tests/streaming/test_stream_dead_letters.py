"""dead_letter_record: byte-for-byte copies plus the DeadLetterHeaders."""

from __future__ import annotations

import pydantic
import pytest

from schemas.dead_letter import (
    MAX_MESSAGE_CHARS,
    REPLAY_COUNT,
    DeadLetterHeaders,
    ErrorStage,
)
from worker.streaming.dead_letters import dead_letter_record
from worker.streaming.types import Message, Partition

RAW_VALUE = bytes(range(256))  # not UTF-8: must survive untouched


def consumed(headers: tuple[tuple[str, bytes], ...]) -> Message[object]:
    return Message(
        payload=object(),  # the payload never goes into the dead letter
        partition=Partition("conversations", 3),
        offset=41,
        timestamp=1_717_171_717_171,
        key=b"\x00conv-1",
        value=RAW_VALUE,
        headers=headers,
    )


def test_copies_record_and_adds_headers() -> None:
    original_headers = (("traceparent", b"00-abc-01"), ("content-type", b"\xffbinary"))
    record = dead_letter_record(
        consumed(original_headers),
        stage=ErrorStage.FETCH,
        error_class="ImageTooLarge",
        error_message="image is 40 MB",
        attempts=3,
        worker_id="pod-7",
        dlq_topic="conversations.dlq",
    )
    assert record.topic == "conversations.dlq"
    assert record.key == b"\x00conv-1"
    assert record.value == RAW_VALUE
    assert record.partition is None
    assert record.headers[:2] == original_headers  # first, in order, untouched
    parsed = DeadLetterHeaders.from_kafka_headers(list(record.headers))
    assert parsed.stage is ErrorStage.FETCH
    assert parsed.error_class == "ImageTooLarge"
    assert parsed.error_message == "image is 40 MB"
    assert parsed.original_topic == "conversations"
    assert parsed.original_partition == 3
    assert parsed.original_offset == 41
    assert parsed.original_timestamp == 1_717_171_717_171
    assert parsed.attempts == 3
    assert parsed.worker == "pod-7"
    assert all(isinstance(v, bytes) for _, v in record.headers)


def test_earlier_dead_letter_headers_are_replaced_but_replay_count_kept() -> None:
    first = dead_letter_record(
        consumed((("app", b"1"),)), "decode", "ValueError", "bad json", 1, "pod-1", "dlq"
    )
    # The replay tool re-drives it (strips guardstream.* and counts); simulate
    # an input that still carries old headers plus the count.
    replayed = Message(
        payload=None,
        partition=Partition("conversations", 0),
        offset=900,
        timestamp=5,
        key=first.key,
        value=first.value,
        headers=(*first.headers, (REPLAY_COUNT, b"2")),
    )
    second = dead_letter_record(replayed, "classify", "OOM", "cuda", 2, "pod-2", "dlq")
    names = [name for name, _ in second.headers]
    assert len(names) == len(set(names)), names  # nothing duplicated
    assert ("app", b"1") in second.headers
    assert (REPLAY_COUNT, b"2") in second.headers
    parsed = DeadLetterHeaders.from_kafka_headers(list(second.headers))
    assert parsed.stage is ErrorStage.CLASSIFY
    assert parsed.original_offset == 900
    assert parsed.worker == "pod-2"


def test_long_messages_are_truncated_and_stage_is_validated() -> None:
    record = dead_letter_record(consumed(()), "publish", "E", "x" * 5000, 1, "w", "dlq")
    parsed = DeadLetterHeaders.from_kafka_headers(list(record.headers))
    assert len(parsed.error_message) == MAX_MESSAGE_CHARS
    with pytest.raises(ValueError):
        dead_letter_record(consumed(()), "no-such-stage", "E", "m", 1, "w", "dlq")
    with pytest.raises(pydantic.ValidationError):
        dead_letter_record(consumed(()), "decode", "E", "m", 0, "w", "dlq")  # attempts >= 1
