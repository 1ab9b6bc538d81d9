"""Fixtures for worker.streaming tests; integration ones use the real broker.

Start it with `scripts/services up`; GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS
overrides the address (default 127.0.0.1:9092).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from worker.streaming.drivers.kafka_python import KafkaPythonAdmin
from worker.streaming.kafka_config import KafkaConnection, admin_kwargs, producer_kwargs
from worker.streaming.topics import TopicSpec, ensure_topics


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> str:
    return os.environ.get("GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def kafka_conn(kafka_bootstrap_servers: str) -> KafkaConnection:
    return KafkaConnection(bootstrap_servers=kafka_bootstrap_servers, client_id="gs-test-streaming")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """unique("topic") -> "gs-stream-topic-<hex>" (topic, group and txn ids)."""
    return lambda prefix: f"gs-stream-{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_admin(kafka_conn: KafkaConnection) -> Iterator[Any]:
    admin = KafkaAdminClient(**admin_kwargs(kafka_conn))
    yield admin
    admin.close()


@pytest.fixture
def make_topic(kafka_admin: Any, unique: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """make_topic(prefix, partitions) -> a new topic, deleted after the test.

    Deleted because every ensure_topics() lists all the broker's topics: a
    broker piling up thousands of test topics slows every later test down.
    """
    created: list[str] = []

    def make(prefix: str = "topic", partitions: int = 1) -> str:
        name = unique(prefix)
        ensure_topics(KafkaPythonAdmin(kafka_admin), [TopicSpec(name, partitions=partitions)])
        created.append(name)
        return name

    yield make
    if created:
        try:
            kafka_admin.delete_topics(created)
        except Exception as exc:  # best effort: a leftover topic is harmless
            warnings.warn(f"could not delete test topics {created}: {exc!r}", stacklevel=1)


@pytest.fixture
def produce_inputs(kafka_conn: KafkaConnection) -> Callable[..., list[bytes]]:
    """produce_inputs(topic, n) writes values b"in-0".. spread over partitions by key."""

    def produce(topic: str, n: int, prefix: str = "in") -> list[bytes]:
        producer = KafkaProducer(**producer_kwargs(kafka_conn, linger_ms=0))
        values = [f"{prefix}-{i}".encode() for i in range(n)]
        try:
            for i, value in enumerate(values):
                producer.send(topic, key=b"key-%d" % i, value=value, headers=[("seq", b"%d" % i)])
            producer.flush(timeout=30)
        finally:
            producer.close()
        return values

    return produce


@pytest.fixture
def read_topic(kafka_conn: KafkaConnection) -> Callable[..., list[Any]]:
    """read_topic(topic, isolation) -> every record up to the current end offsets."""

    def read(topic: str, isolation: str = "read_uncommitted", timeout_s: float = 60.0) -> list[Any]:
        consumer = KafkaConsumer(
            **kafka_conn.common_kwargs(),
            isolation_level=isolation,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            consumer.assign(tps)
            end = consumer.end_offsets(tps)
            consumer.seek_to_beginning(*tps)
            out: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise AssertionError(f"reading {topic} timed out")
                for batch in consumer.poll(timeout_ms=200).values():
                    out.extend(batch)
            return out
        finally:
            consumer.close()

    return read


@pytest.fixture
def committed_offsets(kafka_conn: KafkaConnection) -> Callable[[str, str], dict[int, int]]:
    """committed_offsets(group, topic) -> {partition: committed offset or 0}."""

    def committed(group: str, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(
            **kafka_conn.common_kwargs(), group_id=group, enable_auto_commit=False
        )
        try:
            partitions = sorted(consumer.partitions_for_topic(topic))
            return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions}
        finally:
            consumer.close(autocommit=False)

    return committed


@pytest.fixture(params=["kafka-python", "confluent"])
def driver(request: pytest.FixtureRequest) -> Any:
    """Each Kafka driver in turn (``worker.streaming.drivers``)."""
    from worker.streaming.drivers import load_driver

    return load_driver(request.param)
