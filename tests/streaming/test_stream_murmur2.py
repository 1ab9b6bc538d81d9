"""Key partitioning: guardstream's murmur2 picks kafka-python's (and the Java client's)
partitions, and both drivers put a key on the same partition of a real topic."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner import murmur2 as kafka_python_murmur2

from worker.bench.cluster import StaticCluster
from worker.streaming.drivers import KafkaDriver, load_driver
from worker.streaming.kafka_config import KafkaConnection, producer_kwargs
from worker.streaming.murmur2 import Murmur2Partitioner, murmur2


def random_keys(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = [rng.randbytes(rng.randint(0, 100)) for _ in range(count)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(count // 4)]
    keys += [f"conv-ünïcødé-{i}-🙂".encode() for i in range(count // 8)]
    return keys


def test_murmur2_equals_kafka_pythons_on_every_length_and_byte() -> None:
    keys = random_keys(2_000, seed=7) + [
        bytes([b]) * n for b in (0, 0x7F, 0x80, 0xFF) for n in range(9)
    ]
    for key in keys:
        assert murmur2(key) == kafka_python_murmur2(key), key
    # Accepts what kafka-python's send passes on: bytes-like keys.
    assert murmur2(bytearray(b"conversation-1")) == kafka_python_murmur2(b"conversation-1")


@pytest.mark.parametrize(
    ("key", "partition"),
    # Partitions out of 1,000 that the Java client's partitioner gives (kafka-python's
    # own compatibility vectors).
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_murmur2_matches_the_java_client(key: bytes, partition: int) -> None:
    assert (murmur2(key) & 0x7FFFFFFF) % 1000 == partition


@pytest.mark.parametrize(
    "partitions",
    [{0}, {0, 1, 2}, set(range(7)), set(range(12)), set(range(64)), {0, 2, 5, 7, 11}],
)
def test_partitioner_chooses_what_the_default_partitioner_chooses(partitions: set[int]) -> None:
    # Leaders missing for some partitions: keyed records still hash over all of them.
    available = set(sorted(partitions)[::2])
    cluster = StaticCluster({"verdicts": partitions}, {"verdicts": available})
    ours, theirs = Murmur2Partitioner(), DefaultPartitioner()
    for key in random_keys(400, seed=len(partitions)):
        assert ours.partition("verdicts", key, key, b"v", b"v", cluster) == theirs.partition(
            "verdicts", key, key, b"v", b"v", cluster
        )


def test_records_without_a_key_go_to_an_available_partition() -> None:
    cluster = StaticCluster({"t": set(range(6))}, {"t": {1, 4}})
    chosen = {
        Murmur2Partitioner().partition("t", None, None, b"v", b"v", cluster) for _ in range(200)
    }
    assert chosen == {1, 4}
    no_leaders = StaticCluster({"t": set(range(3))}, {"t": set()})
    chosen = {
        Murmur2Partitioner().partition("t", None, None, b"v", b"v", no_leaders) for _ in range(200)
    }
    assert chosen == {0, 1, 2}


@pytest.mark.parametrize("topic", ["missing", "__consumer_offsets"])
def test_an_unknown_or_internal_topic_is_refused_like_the_default(topic: str) -> None:
    cluster = StaticCluster(
        {"t": {0}, "__consumer_offsets": set(range(50))}, internal_topics={"__consumer_offsets"}
    )
    for partitioner in (Murmur2Partitioner(), DefaultPartitioner()):
        with pytest.raises(ValueError, match="not found"):
            partitioner.partition(topic, b"k", b"k", b"v", b"v", cluster)


def test_the_kafka_python_producer_uses_it() -> None:
    assert isinstance(producer_kwargs(KafkaConnection("k:9092"))["partitioner"], Murmur2Partitioner)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_both_drivers_put_a_key_on_the_same_partition(
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    read_topic: Callable[..., list[Any]],
) -> None:
    """A fleet that mixes drivers (or moves from one to the other) keeps a conversation's
    verdicts on one partition, the one a Java client would choose."""
    topic = make_topic("keys", 7)
    keys = [*random_keys(240, seed=11), b""]
    for name in ("kafka-python", "confluent"):
        driver: KafkaDriver = load_driver(name)
        producer = driver.producer(kafka_conn, linger_ms=0)
        try:
            for i, key in enumerate(keys):
                producer.send(topic, value=b"%s-%d" % (name.encode(), i), key=key)
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=10)
    partition_of = {record.value: record.partition for record in read_topic(topic)}
    assert len(partition_of) == 2 * len(keys)
    for i, key in enumerate(keys):
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % 7
        assert partition_of[b"kafka-python-%d" % i] == expected, key
        assert partition_of[b"confluent-%d" % i] == expected, key
    assert len({partition_of[b"confluent-%d" % i] for i in range(len(keys))}) == 7
