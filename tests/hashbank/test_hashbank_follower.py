"""BankFollower against a fake consumer: catch-up, following, bad records, a topic that
appears late, poll errors. The real broker: test_hashbank_follower_kafka.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from hashbank_helpers import TOPIC, FakeBankConsumer, md5_entry, pdq_entry, random_pdq
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from worker.hashbank import BankFollower, HashBank, bank_consumer_kwargs, entry_record
from worker.metrics import Metrics
from worker.streaming.kafka_config import KafkaConnection

FakeConsumer = FakeBankConsumer


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
