"""Keeps a HashBank equal to the compacted bank topic, on its own thread.

At start it assigns itself every partition of the topic (no consumer group: every worker
reads the whole bank), seeks to the beginning and notes the end offsets; ``caught_up``
turns true once it has read up to them (``/readyz`` waits for that). It then keeps
following, so an entry published while the fleet runs takes effect within a poll.
Records that are not a valid entry or tombstone are logged (never their content),
counted and skipped. The consumer is passed in (``build_bank_consumer`` makes one) and
only ever used from the follower's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import structlog
from kafka import TopicPartition

from worker.hashbank.bank import HashBank, Update
from worker.hashbank.exceptions import BadBankRecord
from worker.hashbank.records import parse_record
from worker.metrics import Metrics
from worker.streaming.kafka_config import KafkaConnection

log = structlog.get_logger(__name__)


def bank_consumer_kwargs(conn: KafkaConnection, **overrides: Any) -> dict[str, Any]:
    """kwargs for the follower's ``KafkaConsumer``: no group, nothing committed, and no
    auto-created topic (that one would not be compacted)."""
    kwargs = conn.common_kwargs()
    kwargs.update(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        max_poll_records=2000,
    )
    kwargs.update(overrides)
    return kwargs


def build_bank_consumer(conn: KafkaConnection, **overrides: Any) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(**bank_consumer_kwargs(conn, **overrides))


class BankFollower:
    def __init__(
        self,
        consumer: Any,
        bank: HashBank,
        topic: str,
        *,
        metrics: Metrics | None = None,
        poll_timeout_ms: int = 500,
        retry_s: float = 2.0,
    ) -> None:
        self._consumer = consumer
        self._bank = bank
        self.topic = topic
        self._metrics = metrics
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashbank-follower", daemon=True)
        self.records = 0
        self.bad_records = 0
        self.error: Exception | None = None

    @property
    def caught_up(self) -> bool:
        """Read up to the end offsets the topic had when the follower started."""
        return self._caught_up.is_set()

    def wait_caught_up(self, timeout_s: float) -> bool:
        return self._caught_up.wait(timeout_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop following and close the consumer (within about one poll)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def ready(self) -> bool:
        """Caught up and still following (for /readyz)."""
        return self.caught_up and self._thread.is_alive() and not self._stop.is_set()

    # --- the follower's thread ---------------------------------------------------------

    def _run(self) -> None:
        started = time.monotonic()
        try:
            targets = self._assign_from_beginning()
            if targets is None:
                return
            with self._bank.bulk():  # one PDQ table build for the whole backlog
                while not self._stop.is_set() and targets:
                    self._poll_once()
                    targets = self._not_reached(targets)
            if not self._stop.is_set():
                self._mark_caught_up(started)
            while not self._stop.is_set():
                self._poll_once()
        except Exception as exc:  # a bug, not a broker hiccup (those are retried below)
            self.error = exc
            log.error("hash bank follower stopped", error_class=type(exc).__name__, exc_info=True)
        finally:
            try:
                self._consumer.close()
            except Exception as exc:
                log.debug("closing the bank consumer failed", error_class=type(exc).__name__)

    def _assign_from_beginning(self) -> dict[TopicPartition, int] | None:
        """Assign every partition, seek to the beginning; the end offsets to reach."""
        warned = False
        while not self._stop.is_set():
            try:
                partitions = self._consumer.partitions_for_topic(self.topic)
                if partitions:
                    assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                    self._consumer.assign(assigned)
                    self._consumer.seek_to_beginning(*assigned)
                    ends: Mapping[TopicPartition, int] = self._consumer.end_offsets(assigned)
                    log.info("following the hash bank", topic=self.topic, partitions=len(assigned))
                    return {tp: int(end) for tp, end in ends.items() if end > 0}
                if not warned:
                    log.warning("hash bank topic not found; waiting for it", topic=self.topic)
                    warned = True
            except Exception as exc:
                log.warning("hash bank: cannot assign yet", error_class=type(exc).__name__)
            self._stop.wait(self._retry_s)
        return None

    def _poll_once(self) -> None:
        try:
            batches = self._consumer.poll(timeout_ms=self._poll_timeout_ms)
        except Exception as exc:  # kafka-python reconnects by itself; keep asking
            log.warning("hash bank poll failed", error_class=type(exc).__name__)
            self._stop.wait(self._retry_s)
            return
        updates: list[Update] = []
        for records in batches.values():
            for record in records:
                self.records += 1
                try:
                    updates.append(parse_record(record.key, record.value))
                except BadBankRecord as exc:
                    self.bad_records += 1
                    if self._metrics is not None:
                        self._metrics.hash_bank_bad_records.inc()
                    log.warning(
                        "bad hash bank record skipped",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        reason=str(exc),
                    )
        if updates:
            self._bank.apply(updates)

    def _not_reached(self, targets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        left = {}
        for tp, end in targets.items():
            try:
                position = self._consumer.position(tp, timeout_ms=self._poll_timeout_ms)
            except Exception as exc:
                log.debug("hash bank position unknown", error_class=type(exc).__name__)
                position = None
            if position is None or position < end:
                left[tp] = end
        return left

    def _mark_caught_up(self, started: float) -> None:
        self._caught_up.set()
        if self._metrics is not None:
            self._metrics.hash_bank_caught_up.set(1)
        log.info(
            "hash bank caught up",
            topic=self.topic,
            entries=len(self._bank),
            records=self.records,
            bad_records=self.bad_records,
            seconds=round(time.monotonic() - started, 3),
        )
