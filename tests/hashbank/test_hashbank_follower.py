"""BankFollower against a fake consumer: catch-up, following, bad records, a topic that
appears late, poll errors. The real broker: test_hashbank_follower_kafka.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from hashbank_helpers import md5_entry, pdq_entry, random_pdq
from kafka import TopicPartition
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from worker.hashbank import BankFollower, HashBank, bank_consumer_kwargs, entry_record
from worker.metrics import Metrics
from worker.streaming.kafka_config import KafkaConnection

TOPIC = "bank"


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """The slice of KafkaConsumer the follower uses; a test thread may append records."""

    def __init__(self, partitions: int = 3, *, exists: bool = True) -> None:
        self.logs: dict[int, list[tuple[bytes | None, bytes | None]]] = {
            p: [] for p in range(partitions)
        }
        self.exists = exists
        self.positions: dict[TopicPartition, int] = {}
        self.fail_next_poll = False
        self.closed = False
        self._lock = threading.Lock()

    def append(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        with self._lock:
            self.logs[partition].append((key, value))

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.logs) if self.exists and topic == TOPIC else None

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(tps, -1)

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: len(self.logs[tp.partition]) for tp in tps}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        if self.fail_next_poll:
            self.fail_next_poll = False
            raise ConnectionError("broker went away")
        out: dict[TopicPartition, list[Record]] = {}
        with self._lock:
            for tp, position in self.positions.items():
                log = self.logs[tp.partition][position : position + 2]  # small polls
                if log:
                    out[tp] = [
                        Record(tp.topic, tp.partition, position + i, k, v)
                        for i, (k, v) in enumerate(log)
                    ]
                    self.positions[tp] = position + len(log)
        if not out:
            time.sleep(min(timeout_ms, 10) / 1000)
        return out

    def close(self) -> None:
        self.closed = True


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def follower_for(consumer: Any, bank: HashBank, **kwargs: Any) -> BankFollower:
    return BankFollower(consumer, bank, TOPIC, poll_timeout_ms=20, retry_s=0.02, **kwargs)


def test_catches_up_then_follows_puts_and_tombstones() -> None:
    rng = np.random.default_rng(0)
    consumer = FakeConsumer()
    entries = [pdq_entry(random_pdq(rng), label=f"e{i}") for i in range(9)]
    for i, entry in enumerate(entries):
        consumer.append(i % 3, *entry_record(entry))
    consumer.append(0, entries[0].key.encode(), None)  # tombstone, later in its partition
    consumer.append(1, b"garbage", b"{}")
    consumer.append(2, entries[2].key.encode(), b"not json")
    metrics = Metrics(CollectorRegistry())
    bank = HashBank(metrics=metrics)
    follower = follower_for(consumer, bank, metrics=metrics)
    with capture_logs() as logs:
        follower.start()
        assert follower.wait_caught_up(5)
    try:
        assert follower.ready
        assert len(bank) == 8 and bank.get(entries[0].key) is None
        assert bank.get(entries[2].key) == entries[2]  # a bad record does not remove
        assert follower.bad_records == 2 and follower.records == 12
        bad = [line for line in logs if line["event"] == "bad hash bank record skipped"]
        assert len(bad) == 2 and all(entries[2].hash not in repr(line) for line in bad)
        assert metrics.registry.get_sample_value("guardstream_hash_bank_caught_up") == 1
        assert metrics.registry.get_sample_value("guardstream_hash_bank_bad_records_total") == 2
        # following: a new entry, then its tombstone
        late = md5_entry("ab" * 16)
        consumer.append(1, *entry_record(late))
        assert eventually(lambda: bank.get(late.key) == late)
        consumer.append(1, late.key.encode(), None)
        assert eventually(lambda: bank.get(late.key) is None)
    finally:
        follower.stop()
    assert consumer.closed and not follower.ready


def test_waits_for_a_missing_topic_and_survives_poll_errors() -> None:
    rng = np.random.default_rng(1)
    consumer = FakeConsumer(exists=False)
    entry = pdq_entry(random_pdq(rng))
    consumer.append(0, *entry_record(entry))
    bank = HashBank()
    follower = follower_for(consumer, bank)
    with capture_logs() as logs:
        follower.start()
        try:
            assert not follower.wait_caught_up(0.2)
            assert any(line["event"].startswith("hash bank topic not found") for line in logs)
            consumer.fail_next_poll = True
            consumer.exists = True
            assert follower.wait_caught_up(5)
            assert bank.get(entry.key) == entry
        finally:
            follower.stop()
    assert any(line["event"] == "hash bank poll failed" for line in logs)


def test_an_empty_topic_is_caught_up_at_once() -> None:
    consumer = FakeConsumer()
    follower = follower_for(consumer, HashBank())
    follower.start()
    try:
        assert follower.wait_caught_up(5)
    finally:
        follower.stop()


def test_consumer_kwargs_have_no_group_and_no_auto_created_topic() -> None:
    kwargs = bank_consumer_kwargs(KafkaConnection("k1:9092,k2:9092", client_id="w"))
    assert kwargs["group_id"] is None and kwargs["enable_auto_commit"] is False
    assert kwargs["allow_auto_create_topics"] is False
    assert kwargs["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert bank_consumer_kwargs(KafkaConnection("k:1"), max_poll_records=5)["max_poll_records"] == 5
