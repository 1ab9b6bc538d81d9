"""dead_letter_record: byte-for-byte copies plus the DeadLetterHeaders."""

from __future__ import annotations

import pydantic
import pytest

from schemas.dead_letter import (
    MAX_MESSAGE_CHARS,
    OMITTED,
    REPLAY_COUNT,
    DeadLetterHeaders,
    ErrorStage,
)
from worker.streaming.dead_letters import dead_letter_record, record_size
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


def big(value_bytes: int, headers: tuple[tuple[str, bytes], ...] = ()) -> Message[object]:
    return Message(
        payload=None,
        partition=Partition("conversations", 1),
        offset=7,
        timestamp=5,
        key=b"conv-big",
        value=b"\x00" * value_bytes,
        headers=headers,
    )


def test_a_dead_letter_that_fits_is_a_whole_copy() -> None:
    record = dead_letter_record(big(100_000), "decode", "E", "m", 1, "w", "dlq", 1_048_576)
    assert record.value == b"\x00" * 100_000
    assert record_size(record) <= 1_048_576
    assert DeadLetterHeaders.from_kafka_headers(list(record.headers)).omitted is None
    assert OMITTED not in dict(record.headers)


def test_a_record_near_the_size_limit_is_dead_lettered_without_its_value() -> None:
    """The input topic accepted it, but with our headers it would be over the producer's
    max_request_size: kafka-python would refuse the send and the worker would stop on
    the same record after every restart."""
    limit = 1_048_576
    message = big(limit - 200, (("app", b"1"), (REPLAY_COUNT, b"1")))
    assert record_size(dead_letter_record(message, "decode", "E", "m", 1, "w", "dlq")) > limit
    record = dead_letter_record(message, "decode", "E", "m", 1, "w", "dlq", limit)
    assert record_size(record) <= limit
    assert record.value == b""
    assert record.key == b"conv-big"
    assert ("app", b"1") in record.headers and (REPLAY_COUNT, b"1") in record.headers
    parsed = DeadLetterHeaders.from_kafka_headers(list(record.headers))
    assert parsed.omitted == f"value={limit - 200}"
    assert (parsed.original_partition, parsed.original_offset) == (1, 7)  # where the original is


def test_huge_original_headers_are_left_out_too() -> None:
    limit = 100_000
    message = big(10, (("trace", b"x" * 150_000), ("app", b"1"), (REPLAY_COUNT, b"2")))
    record = dead_letter_record(message, "decode", "E", "m", 1, "w", "dlq", limit)
    assert record_size(record) <= limit
    assert [h for h in record.headers if not h[0].startswith("guardstream.")] == []
    assert (REPLAY_COUNT, b"2") in record.headers  # the replay guard survives
    parsed = DeadLetterHeaders.from_kafka_headers(list(record.headers))
    assert parsed.omitted == "value=10,headers=2"
