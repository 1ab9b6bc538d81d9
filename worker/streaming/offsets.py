"""Per-partition commit watermarks over out-of-order completion.

Steps may finish messages out of order (thread pools, batches, producer acks
on different partitions). Committing offset N+1 tells Kafka "everything below
N+1 is done", so the committable offset of a partition is the lowest offset
still in flight, or one past the highest tracked offset when nothing is in
flight. Offsets need not be contiguous (compaction, transaction markers): only
the tracked offsets matter.

Not thread-safe on purpose: the consumer loop owns it (``track`` on consume,
``complete`` from terminal steps, which run in the loop's thread via ``poll``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from worker.streaming.exceptions import InvalidState
from worker.streaming.types import Partition


class _PartitionState:
    __slots__ = ("in_flight", "last", "order")

    def __init__(self) -> None:
        # Tracked offsets, ascending, from the oldest not yet passed by the watermark.
        self.order: deque[int] = deque()
        # Tracked and not completed: a set, so out-of-order completion is O(1).
        self.in_flight: set[int] = set()
        self.last = -1

    def watermark(self) -> int:
        order, in_flight = self.order, self.in_flight
        # Lazily drop the completed prefix: amortised O(1) per offset.
        while order and order[0] not in in_flight:
            order.popleft()
        return order[0] if order else self.last + 1


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[Partition, _PartitionState] = {}

    def track(self, partition: Partition, offset: int) -> None:
        """Record that ``offset`` was consumed and is now in flight."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _PartitionState()
        elif offset <= state.last:
            # The consumer only moves forward within one assignment; going back
            # means a seek or a missed forget() - a bug that would corrupt commits.
            raise InvalidState(f"{partition}: offset {offset} tracked after {state.last}")
        state.order.append(offset)
        state.in_flight.add(offset)
        state.last = offset

    def complete(self, partition: Partition, offset: int) -> bool:
        """Mark ``offset`` done. Returns False (and changes nothing) when it is
        not in flight: unknown/forgotten partition, never tracked, or already done."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.in_flight:
            return False
        state.in_flight.discard(offset)
        if state.order[0] == offset:
            # Prune the done prefix now so memory stays bounded by what is in
            # flight even if nobody asks for committable() for a while.
            state.watermark()
        return True

    def committable(self, partitions: Iterable[Partition] | None = None) -> dict[Partition, int]:
        """Next offset to consume per tracked partition (everything below is done)."""
        if partitions is None:
            return {p: s.watermark() for p, s in self._partitions.items()}
        return {p: self._partitions[p].watermark() for p in partitions if p in self._partitions}

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop all state of revoked partitions; later completions are ignored."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def partitions(self) -> frozenset[Partition]:
        return frozenset(self._partitions)

    @property
    def in_flight(self) -> int:
        """Messages tracked and not yet completed, over all partitions."""
        return sum(len(s.in_flight) for s in self._partitions.values())

    def in_flight_for(self, partition: Partition) -> int:
        state = self._partitions.get(partition)
        return 0 if state is None else len(state.in_flight)
