"""BankFollower on the real broker (127.0.0.1:9092) with a private compacted topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hashbank_helpers import md5_entry, near, pdq_entry, random_pdq
from kafka import KafkaAdminClient, KafkaProducer

from worker.hashbank import BankFollower, HashBank, build_bank_consumer, entry_record, tombstone_key
from worker.streaming.drivers.kafka_python import KafkaPythonDriver
from worker.streaming.kafka_config import KafkaConnection, admin_kwargs, producer_kwargs
from worker.streaming.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture
def conn() -> KafkaConnection:
    import os

    servers = os.environ.get("GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    return KafkaConnection(bootstrap_servers=servers, client_id="gs-test-hashbank")


@pytest.fixture
def bank_topic(conn: KafkaConnection) -> Iterator[str]:
    name = f"gs-test-hashbank-{uuid.uuid4().hex[:10]}"
    admin = KafkaPythonDriver().admin(conn)
    try:
        ensure_topics(admin, [TopicSpec(name, 3, 1, {"cleanup.policy": "compact"})])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


@pytest.fixture
def publish(conn: KafkaConnection) -> Iterator[Callable[..., None]]:
    producer = KafkaProducer(**producer_kwargs(conn, linger_ms=0))

    def send(topic: str, key: bytes, value: bytes | None) -> None:
        producer.send(topic, key=key, value=value).get(timeout=30)

    yield send
    producer.close()


def eventually(condition: Callable[[], Any], timeout_s: float = 15.0) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.02)


def start_follower(conn: KafkaConnection, topic: str) -> tuple[BankFollower, HashBank]:
    bank = HashBank()
    follower = BankFollower(build_bank_consumer(conn), bank, topic, poll_timeout_ms=200)
    follower.start()
    return follower, bank


def test_follower_catches_up_follows_and_a_new_one_rebuilds(
    conn: KafkaConnection, bank_topic: str, publish: Callable[..., None]
) -> None:
    rng = np.random.default_rng(0)
    entries = [pdq_entry(random_pdq(rng), label=f"case-{i}") for i in range(50)]
    entries.append(md5_entry("cd" * 16))
    for entry in entries:
        publish(bank_topic, *entry_record(entry))
    publish(bank_topic, b"not-a-key", b"{}")

    follower, bank = start_follower(conn, bank_topic)
    try:
        assert follower.wait_caught_up(30)
        assert len(bank) == 51 and follower.bad_records == 1

        late = pdq_entry(random_pdq(rng), bank="late", label="published while running")
        query = near(late.hash, 20, rng)
        assert bank.match(pdq=query) is None
        sent = time.monotonic()
        publish(bank_topic, *entry_record(late))
        eventually(lambda: bank.match(pdq=query) is not None)
        took = time.monotonic() - sent
        hit = bank.match(pdq=query)
        assert hit is not None and hit.entry == late and hit.distance == 20
        print(f"\nan entry published while following took effect after {took:.2f} s")

        publish(bank_topic, tombstone_key("pdq", late.hash), None)
        eventually(lambda: bank.match(pdq=query) is None)
        publish(bank_topic, tombstone_key("pdq", entries[0].hash), None)
        eventually(lambda: bank.get(entries[0].key) is None)
    finally:
        follower.stop()

    again, rebuilt = start_follower(conn, bank_topic)
    try:
        assert again.wait_caught_up(30)
        assert {e.key for e in rebuilt.entries()} == {e.key for e in entries[1:]}
        assert rebuilt.match(pdq=query) is None
        assert rebuilt.match(md5="cd" * 16) is not None
    finally:
        again.stop()


def test_topics_ensure_creates_the_bank_topic_compacted(conn: KafkaConnection) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    from worker.commands.topics import ensure_worker_topics
    from worker.config import Settings

    suffix = uuid.uuid4().hex[:10]
    names = {
        "input_topic": f"gs-test-in-{suffix}",
        "output_topic": f"gs-test-out-{suffix}",
        "dlq_topic": f"gs-test-dlq-{suffix}",
        "review_topic": f"gs-test-review-{suffix}",
        "hash_bank_topic": f"gs-test-bank-{suffix}",
    }
    settings = Settings(kafka_bootstrap_servers=conn.bootstrap_servers, **names)
    admin = KafkaAdminClient(**admin_kwargs(conn))
    try:
        created = ensure_worker_topics(settings, partitions=2, replication_factor=1)
        assert sorted(created) == sorted(names.values())
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, names["hash_bank_topic"])]
        )
        configs = described["topic"][names["hash_bank_topic"]]
        assert configs["cleanup.policy"]["value"] == "compact"
        bank_meta = admin.describe_topics([names["hash_bank_topic"]])[0]
        assert len(bank_meta["partitions"]) == 1
        off = Settings(kafka_bootstrap_servers=conn.bootstrap_servers, hash_bank_topic="")
        assert off.hash_bank_topic is None
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()
