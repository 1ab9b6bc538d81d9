"""Reading what a worker wrote: its verdict and dead-letter topics, and its metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.dead_letter import DeadLetterHeaders
    from schemas.verdict import VerdictEvent
    from worker.lab.sandbox import TopicSet


def parse_output(topics: TopicSet, record: Any) -> VerdictEvent | DeadLetterHeaders:
    """A record of ``topics.output`` as its verdict, one of ``topics.dlq`` as its headers."""
    from schemas.dead_letter import DeadLetterHeaders
    from schemas.verdict import VerdictEvent

    if record.topic == topics.output:
        return VerdictEvent.model_validate_json(record.value)
    return DeadLetterHeaders.from_kafka_headers(list(record.headers))


@dataclass
class Outputs:
    """Every verdict and dead letter read, duplicates kept (each key maps to a list)."""

    verdicts: dict[str, list[VerdictEvent]] = field(default_factory=dict)
    """Keyed by event id."""
    dead_letters: dict[str, list[tuple[DeadLetterHeaders, Any]]] = field(default_factory=dict)
    """Keyed by the original offset "partition:offset"; value = (headers, record)."""

    def accounted(self) -> int:
        return len(self.verdicts) + len(self.dead_letters)

    def add(self, topics: TopicSet, record: Any) -> None:
        from schemas.verdict import VerdictEvent

        parsed = parse_output(topics, record)
        if isinstance(parsed, VerdictEvent):
            self.verdicts.setdefault(parsed.event_id, []).append(parsed)
        else:
            where = f"{parsed.original_partition}:{parsed.original_offset}"
            self.dead_letters.setdefault(where, []).append((parsed, record))

    def by_position(self) -> dict[tuple[int, int], VerdictEvent | DeadLetterHeaders]:
        """Input (partition, offset) → what it ended as (the last record read for it)."""
        found: dict[tuple[int, int], VerdictEvent | DeadLetterHeaders] = {}
        for verdicts in self.verdicts.values():
            for verdict in verdicts:
                found[(verdict.source.partition, verdict.source.offset)] = verdict
        for letters in self.dead_letters.values():
            for headers, _ in letters:
                found[(headers.original_partition, headers.original_offset)] = headers
        return found


def output_consumer(
    kafka: dict[str, Any], topics: TopicSet, *, isolation_level: str = "read_uncommitted"
) -> tuple[Any, list[Any]]:
    """A consumer (no group) assigned every partition of the output and dead-letter
    topics, at their beginning; and those partitions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        group_id=None,
    )
    tps = [
        TopicPartition(topic, p)
        for topic in (topics.output, topics.dlq)
        for p in range(topics.partitions)
    ]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer, tps


def read_outputs(
    kafka: dict[str, Any],
    topics: TopicSet,
    expected: int | None = None,
    timeout_s: float = 60.0,
    *,
    isolation_level: str = "read_uncommitted",
    on_poll: Callable[[Outputs], None] | None = None,
) -> Outputs:
    """Read the outputs from the beginning until ``expected`` inputs are accounted for
    (or ``timeout_s`` passed: the caller checks the count); with ``expected`` None, up to
    the end offsets as of now (the last stable ones under ``read_committed``), every
    duplicate included: call it once the writers stopped. ``on_poll`` sees each step."""
    consumer, tps = output_consumer(kafka, topics, isolation_level=isolation_level)
    outputs = Outputs()
    deadline = time.monotonic() + timeout_s
    try:
        ends = consumer.end_offsets(tps) if expected is None else None
        while True:
            if expected is not None and outputs.accounted() >= expected:
                break
            if ends is not None and all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
            if time.monotonic() > deadline:
                if ends is not None:
                    raise TimeoutError(f"could not read {topics.name}'s outputs to their end")
                break
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    outputs.add(topics, record)
            if on_poll is not None:
                on_poll(outputs)
    finally:
        consumer.close()
    return outputs


def read_to_end(
    kafka: dict[str, Any],
    topic: str,
    *,
    isolation_level: str = "read_uncommitted",
    timeout_s: float = 60.0,
) -> list[Any]:
    """Every record of ``topic`` (all its partitions) from the beginning up to the end
    offsets as of now (the last stable ones under ``read_committed``)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        group_id=None,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        tps = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def count_records(kafka: dict[str, Any], topics: list[str]) -> int:
    """Records written so far to ``topics`` (sum of log-end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka)
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        return int(sum(consumer.end_offsets(tps).values()))
    finally:
        consumer.close()


def read_values(kafka: dict[str, Any], topic: str, expected: int, timeout_s: float) -> list[bytes]:
    """The values of partition 0 of ``topic`` from the beginning, until ``expected``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **kafka, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    values: list[bytes] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout_s
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(record.value for record in records)
    finally:
        consumer.close()
    return values


def metric_total(registry: Any, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of a metric's samples named ``name`` (all label values unless ``labels``).

    ``registry``: a registry, or a single metric (anything with ``collect()``).
    """
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name != name:
                continue
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            total += sample.value
    return total
