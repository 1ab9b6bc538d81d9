"""TransactionalProduceAndCommit: exactly-once terminal step (Kafka transactions).

Outputs of a group of messages and the input offsets they complete are written
in one transaction: a ``read_committed`` reader sees either all of them, with
the offsets moved past their inputs, or none of them, with the inputs consumed
again. Offsets are committed through the producer
(``send_offsets_to_transaction``) with the consumer's *group metadata*
(``KafkaConsumer.group_metadata()`` in kafka-python 3: a
``ConsumerGroupMetadata`` with group id, generation, member id and group
instance id) so the broker fences a zombie that lost its partitions (KIP-447).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from kafka import OffsetAndMetadata, TopicPartition
from kafka.structs import MemberState

from worker.streaming.exceptions import MessageRejected, ProduceFailed
from worker.streaming.offsets import OffsetTracker
from worker.streaming.steps.base import Step
from worker.streaming.types import (
    Message,
    OutgoingRecord,
    Partition,
    records_of,
    send_record,
)

log = structlog.get_logger(__name__)

Records = Sequence[OutgoingRecord]


class TransactionalProduceAndCommit(Step[Records]):
    """Collect messages; every ``commit_interval_s`` (or ``max_messages``) run
    one transaction: ``begin_transaction``, send all their records,
    ``send_offsets_to_transaction(tracker watermarks, group_metadata())``,
    ``commit_transaction``.

    The whole transaction runs synchronously in the consumer thread, so no
    transaction is ever open while the consumer polls (and thus while a
    rebalance callback runs); messages of partitions revoked in between are
    dropped before the next transaction (their new owner re-processes them).

    Any failure aborts the transaction (best effort) and re-raises: the
    processor stops, nothing of the batch is visible to ``read_committed``
    readers, and the inputs are consumed again after restart. A
    ``ProducerFencedError`` means another instance with the same
    ``transactional_id`` took over: stopping is the only correct reaction.
    The tracker is advanced before the commit; that is harmless because a
    failed commit is fatal to this processor (and its tracker).

    Messages finish out of order (fetch threads, batches), but a transaction
    only carries the records of messages below their partition's new commit
    watermark: records of a message above it would be committed without its
    offset, and produced a second time by whoever consumes it again after a
    crash or a rebalance. Such messages are held for a later transaction (the
    one after the gap below them closes); a crash or a revocation drops them,
    unpublished and uncommitted.

    ``producer`` must be a ``KafkaProducer`` with a ``transactional_id``;
    ``init_transactions()`` is called here unless ``init_transactions=False``.
    It fences older producers with the same id and aborts their open
    transaction.
    """

    def __init__(
        self,
        producer: Any,
        tracker: OffsetTracker,
        group_metadata: Callable[[], Any],
        *,
        commit_interval_s: float = 1.0,
        max_messages: int = 1000,
        flush_timeout_s: float = 60.0,
        init_transactions: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        super().__init__()
        self._producer = producer
        self._tracker = tracker
        self._group_metadata = group_metadata
        self._interval = commit_interval_s
        self._max_messages = max_messages
        self._flush_timeout_s = flush_timeout_s
        self._clock = clock
        self._collected: list[Message[Records]] = []
        # Done, but above their partition's watermark: not publishable yet.
        self._held: list[Message[Records]] = []
        self._first_at = 0.0
        self._committed: dict[Partition, int] = {}
        self.transactions = 0
        """Committed transactions (for metrics and tests)."""
        if init_transactions:
            producer.init_transactions()

    def _accept(self, message: Message[Records]) -> None:
        if len(self._collected) >= self._max_messages:
            raise MessageRejected  # poll() commits the full batch, then we accept
        records_of(message.payload)
        if not self._collected:
            self._first_at = self._clock()
        self._collected.append(message)

    def _flush(self) -> None:
        live = [m for m in (*self._held, *self._collected) if not m.revoked]
        self._collected = []
        for message in live:
            self._tracker.complete(message.partition, message.offset)
        offsets = self._tracker.committable()
        ready = [m for m in live if m.offset < offsets.get(m.partition, -1)]
        self._held = [
            m for m in live if m.partition in offsets and offsets[m.partition] <= m.offset
        ]
        if not ready:
            return
        producer = self._producer
        producer.begin_transaction()
        try:
            sends = [(m, r, send_record(producer, r)) for m in ready for r in m.payload]
            producer.flush(timeout=self._flush_timeout_s)
            for message, record, future in sends:
                if future.failed():
                    raise ProduceFailed(
                        f"producing to {record.topic} for input {message.partition}"
                        f"@{message.offset} failed: {future.exception!r}"
                    ) from future.exception
            changed = {p: o for p, o in offsets.items() if self._committed.get(p) != o}
            if changed:
                producer.send_offsets_to_transaction(
                    {
                        TopicPartition(p.topic, p.index): OffsetAndMetadata(o, "", -1)
                        for p, o in changed.items()
                    },
                    self._group_metadata(),
                )
            producer.commit_transaction()
        except Exception:
            try:
                producer.abort_transaction()
            except Exception as abort_exc:  # fenced/fatal: the broker aborts it anyway
                log.warning("abort_transaction failed", error=repr(abort_exc))
            raise
        self._committed = offsets
        self.transactions += 1

    def poll(self) -> None:
        if self._collected and (
            len(self._collected) >= self._max_messages
            or self._clock() - self._first_at >= self._interval
        ):
            if self._group_changing():
                return  # later: the broker would refuse the offsets (IllegalGeneration)
            self._flush()

    def _group_changing(self) -> bool:
        """Whether this member is (re)joining the group (kafka-python's group metadata
        carries its ``state``). A transaction begun then would send its offsets with the
        generation that the join is replacing: the broker answers IllegalGeneration and
        the processor stops. While the member is STABLE no generation can pass it by: it
        rejoins only inside ``poll()``, in this very thread."""
        state = getattr(self._group_metadata(), "state", None)
        return state is not None and state != MemberState.STABLE

    def join(self, timeout: float | None = None) -> None:
        # One synchronous transaction; its own timeouts bound it.
        self._flush()

    def terminate(self) -> None:
        # Crash path: no commit. Nothing is open (transactions are synchronous).
        self._closed = True
        self._collected = []
        self._held = []
