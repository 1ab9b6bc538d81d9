"""RebalanceEvents: a driver's rebalance callbacks, recorded for the consumer loop.

kafka-python runs the listener on its I/O thread, where a commit would raise
("Cannot block on net.run() from the IO thread itself"): the listener only records what
happened, and ``StreamProcessor`` acts on it in its own thread right after ``poll()``.
A driver that calls the listener inside ``poll()`` in the polling thread (librdkafka)
gets a listener with ``on_event``: the processor then handles each event at once, so a
revoked partition's finished prefix is committed before the driver gives it up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from kafka import ConsumerRebalanceListener

from worker.streaming.types import Partition


class RebalanceEvents(ConsumerRebalanceListener):
    """Records events for the loop (kafka-python: on its I/O thread); with ``on_event``,
    also calls it after each one (a driver calling back in the polling thread)."""

    def __init__(self, on_event: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, frozenset[Partition]]] = []
        self._on_event = on_event

    def _add(self, kind: str, partitions: Iterable[Any]) -> None:
        parts = frozenset(Partition(tp.topic, tp.partition) for tp in partitions)
        with self._lock:
            self._events.append((kind, parts))
        if self._on_event is not None:
            self._on_event()

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._add("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._add("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        # Membership was lost (e.g. session timeout): the partitions may
        # already belong to someone else, so their offsets must not be committed.
        self._add("lost", lost)

    def drain(self) -> list[tuple[str, frozenset[Partition]]]:
        with self._lock:
            events, self._events = self._events, []
        return events
