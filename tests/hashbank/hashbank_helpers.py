"""Entries and hashes for the bank tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
from kafka import TopicPartition

from schemas.hashbank import HashBankEntry

ADDED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TOPIC = "bank"


def random_pdq(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def near(pdq: str, bits: int, rng: np.random.Generator) -> str:
    """``pdq`` with ``bits`` distinct bits flipped."""
    value = int(pdq, 16)
    for bit in rng.choice(256, bits, replace=False):
        value ^= 1 << int(bit)
    return f"{value:064x}"


def pdq_entry(
    pdq: str, bank: str = "takedowns", label: str = "case-1", **extra: object
) -> HashBankEntry:
    return HashBankEntry.model_validate(
        {
            "signal": "pdq",
            "hash": pdq,
            "bank": bank,
            "label": label,
            "categories": ["S4"],
            "added_at": ADDED_AT,
            **extra,
        }
    )


def md5_entry(
    md5: str, bank: str = "exact", label: str = "case-2", **extra: object
) -> HashBankEntry:
    return HashBankEntry.model_validate(
        {
            "signal": "md5",
            "hash": md5,
            "bank": bank,
            "label": label,
            "categories": ["S1", "S12"],
            "added_at": ADDED_AT,
            **extra,
        }
    )


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class FakeBankConsumer:
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
