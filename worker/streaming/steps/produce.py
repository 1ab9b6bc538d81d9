"""Produce: write each message's OutgoingRecords, forward once all are acked."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from worker.streaming.exceptions import MessageRejected, ProduceFailed
from worker.streaming.steps._util import Deadline
from worker.streaming.steps.base import ForwardingStep
from worker.streaming.types import (
    Message,
    OutgoingRecord,
    ProcessingStep,
    Producer,
    RecordFuture,
    records_of,
    send_record,
)

Records = Sequence[OutgoingRecord]
#: A message whose records were sent, and their futures.
_Sent = tuple[Message[Records], list[RecordFuture]]

log = structlog.get_logger(__name__)

# How often poll() looks past an unacked oldest message for later ones acked already.
# Out-of-order acks are rare (records for other partitions or brokers), and offsets are
# committed about once a second: a few tens of ms of delay cost nothing.
OUT_OF_ORDER_SCAN_S = 0.05


class Produce(ForwardingStep[Records, Records]):
    """Send the payload's records (verdicts and/or dead letters) asynchronously.

    A message is forwarded (unchanged) only after *all* its records are acked
    (``acks="all"``), so the commit step downstream never commits an input whose
    outputs might be lost. An empty list forwards right away (nothing to write,
    but the offset must still be committed).

    Send failures are fatal on purpose: kafka-python already retried them for
    ``delivery_timeout_ms``, so the cluster is unhealthy or the record is
    invalid. ``poll()``/``join()`` raise ``ProduceFailed``; the processor stops
    without committing that input (the watermark cannot pass it), exits
    non-zero, and the input is re-processed after restart. Skipping it instead
    would lose a verdict silently. ``producer.send`` itself may raise too
    (buffer full for ``max_block_ms``, oversized record); that propagates from
    ``submit``.

    Acks mostly arrive in send order, so ``poll()`` forwards the acked messages
    at the head of the line at once; messages acked while an older one is not
    are found by a scan of the whole line, at most every ``OUT_OF_ORDER_SCAN_S``
    (scanning up to ``max_in_flight`` messages on every poll costs more than
    the rest of the step).

    The producer is not closed here: it may be shared (the processor closes it).
    """

    def __init__(
        self,
        producer: Producer | Any,
        next_step: ProcessingStep[Records],
        *,
        max_in_flight: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        super().__init__(next_step)
        self._producer = producer
        self._max_in_flight = max_in_flight
        self._in_flight: deque[_Sent] = deque()
        self._clock = clock
        self._scanned_at = -OUT_OF_ORDER_SCAN_S

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _accept(self, message: Message[Records]) -> None:
        if len(self._in_flight) >= self._max_in_flight:
            raise MessageRejected
        futures = [send_record(self._producer, r) for r in records_of(message.payload)]
        # Nothing to write: on at once (its offset must still be committed).
        if not futures and self._forward(message):
            return
        self._in_flight.append((message, futures))

    def _forward_acked(self) -> None:
        self._forward_head(self._in_flight, _acked, _acked_message)
        if self._in_flight:
            now = self._clock()
            if now - self._scanned_at >= OUT_OF_ORDER_SCAN_S:
                self._scanned_at = now
                self._in_flight = self._forward_any_order(self._in_flight, _acked, _acked_message)

    def poll(self) -> None:
        self._forward_acked()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = Deadline(timeout)
        if self._in_flight:
            # Send what lingers in the producer's buffer now, and wait for acks.
            try:
                self._producer.flush(timeout=deadline.remaining)
            except Exception as exc:  # a flush timeout: whatever is unacked stays uncommitted
                log.warning("producer flush failed during join", error=repr(exc))
        while self._in_flight:
            self._forward_acked()
            if not self._in_flight or deadline.expired:
                break
            self._next.poll()
            deadline.pause()
        self._in_flight.clear()
        self._next.close()
        self._next.join(deadline.remaining)

    def terminate(self) -> None:
        self._closed = True
        self._in_flight.clear()
        self._next.terminate()


def _acked(sent: _Sent) -> bool:
    return all(future.is_done for future in sent[1])


def _acked_message(sent: _Sent) -> Message[Records]:
    """The message, once every record of it is acked; ``ProduceFailed`` if one failed."""
    message, futures = sent
    for future, record in zip(futures, message.payload, strict=True):
        if future.failed():
            raise ProduceFailed(
                f"producing to {record.topic} for input {message.partition}"
                f"@{message.offset} failed: {future.exception!r}"
            ) from future.exception
    return message
