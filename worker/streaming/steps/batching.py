"""RunBatchesInThread: micro-batches for one dedicated worker thread (the GPU).

Batches are *assembled* in the consumer loop's thread (cheap) and *run* on a
single worker thread, so a long model call never stops the loop from polling
Kafka: the member keeps heart-beating and ``max_poll_interval_ms`` is measured
against the loop, not against the model.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic

import structlog

from worker.streaming.exceptions import InvalidState, MessageRejected
from worker.streaming.steps._util import JOIN_WAIT_S, Deadline
from worker.streaming.steps.base import ForwardingStep
from worker.streaming.types import Message, ProcessingStep, TIn, TOut

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Batch(Generic[TIn, TOut]):
    messages: list[Message[TIn]] = field(default_factory=list)
    cost: int = 0
    opened_at: float = 0.0
    # Set by the worker thread, read by the loop after it is queued back.
    outputs: list[Message[TOut]] = field(default_factory=list)
    error: BaseException | None = None
    # Outputs not yet accepted by the next step; the batch holds a slot until 0.
    unforwarded: int = 0


class RunBatchesInThread(ForwardingStep[TIn, TOut], Generic[TIn, TOut]):
    """Accumulate messages into batches and run ``function(payloads) -> payloads``.

    A batch is sealed when it holds ``max_batch_size`` messages, when adding
    the next message would push the sum of ``cost(payload)`` over
    ``max_batch_cost`` (e.g. image tiles, a GPU memory proxy), or when its
    first message is ``max_batch_wait_ms`` old. A single message costlier than
    the budget still forms a batch on its own (it cannot be split).

    ``function`` receives the payloads of one batch and must return one
    payload per input, in the same order. It should turn per-item failures
    into values (dead-letter payloads); an exception it raises fails the whole
    step and is re-raised in the consumer thread from ``poll()``/``join()``.

    At most ``max_pending_batches`` sealed batches (queued, running, or done
    but not yet accepted downstream) exist at a time, plus the open one. When
    the open batch is full and no slot is free, ``submit`` raises
    ``MessageRejected``. ``2`` keeps the worker busy: one batch runs while the
    next is already queued.

    The worker thread is a daemon: a hung model call cannot keep a shutting
    down process alive; its batch is simply not committed.

    ``wakeup`` (optional) is set whenever a batch finishes, so a consumer loop
    waiting for room (backpressure) can wake up at once instead of sleeping.
    """

    def __init__(
        self,
        function: Callable[[list[TIn]], list[TOut]],
        next_step: ProcessingStep[TOut],
        *,
        max_batch_size: int,
        max_batch_wait_ms: int,
        cost: Callable[[TIn], int] | None = None,
        max_batch_cost: int | None = None,
        max_pending_batches: int = 2,
        thread_name: str = "guardstream-batch",
        clock: Callable[[], float] = time.monotonic,
        wakeup: threading.Event | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if max_batch_wait_ms < 0:
            raise ValueError("max_batch_wait_ms must be >= 0")
        if max_pending_batches < 1:
            raise ValueError("max_pending_batches must be >= 1")
        if (cost is None) != (max_batch_cost is None):
            raise ValueError("cost and max_batch_cost go together")
        super().__init__(next_step)
        self._function = function
        self._max_size = max_batch_size
        self._max_wait_s = max_batch_wait_ms / 1000
        self._cost = cost
        self._max_cost = max_batch_cost
        self._max_pending = max_pending_batches
        self._clock = clock
        self._wakeup = wakeup

        self._open: _Batch[TIn, TOut] = _Batch()
        self._sealed = 0  # batches holding a slot (queued, running, or unforwarded)
        self._ready: deque[tuple[_Batch[TIn, TOut], Message[TOut]]] = deque()
        self._todo: queue.SimpleQueue[_Batch[TIn, TOut] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Batch[TIn, TOut]] = queue.SimpleQueue()
        self._batch_done = threading.Event()
        self._thread = threading.Thread(target=self._work, name=thread_name, daemon=True)
        self._thread.start()

    # --- worker thread -------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = self._todo.get()
            if batch is None:
                return
            # Revocation may have happened while the batch waited in the queue.
            live = [m for m in batch.messages if not m.revoked]
            try:
                if live:
                    results = self._function([m.payload for m in live])
                    if len(results) != len(live):
                        raise InvalidState(
                            f"batch function returned {len(results)} results for {len(live)} inputs"
                        )
                    batch.outputs = [m.replace(r) for m, r in zip(live, results, strict=True)]
            except BaseException as exc:  # re-raised in the consumer thread
                batch.error = exc
            self._done.put(batch)
            self._batch_done.set()
            if self._wakeup is not None:
                self._wakeup.set()

    # --- consumer thread -----------------------------------------------------

    @property
    def pending_batches(self) -> int:
        return self._sealed

    def _is_full(self, batch: _Batch[TIn, TOut], extra_cost: int = 0) -> bool:
        if len(batch.messages) >= self._max_size:
            return True
        return self._max_cost is not None and batch.cost + extra_cost > self._max_cost

    def _try_seal(self) -> bool:
        """Hand the open batch to the worker if a slot is free."""
        batch = self._open
        batch.messages = [m for m in batch.messages if not m.revoked]
        if not batch.messages:
            self._open = _Batch()
            return True
        if self._sealed >= self._max_pending:
            return False
        self._sealed += 1
        self._open = _Batch()
        self._todo.put(batch)
        return True

    def _accept(self, message: Message[TIn]) -> None:
        cost = self._cost(message.payload) if self._cost is not None else 0
        batch = self._open
        if batch.messages and self._is_full(batch, cost) and not self._try_seal():
            # No free slot: hand finished batches on first (that frees slots),
            # then try once more before refusing.
            self._collect()
            self._forward_ready()
            if not self._try_seal():
                raise MessageRejected
        batch = self._open
        if not batch.messages:
            batch.opened_at = self._clock()
        batch.messages.append(message)
        batch.cost += cost
        if len(batch.messages) >= self._max_size or (
            self._max_cost is not None and batch.cost >= self._max_cost
        ):
            # Best effort: if no slot is free it stays open (and full) and the
            # next submit is rejected until poll() frees a slot.
            self._try_seal()

    def _collect(self) -> None:
        while True:
            try:
                batch = self._done.get_nowait()
            except queue.Empty:
                return
            if batch.error is not None:
                raise batch.error
            batch.unforwarded = len(batch.outputs)
            if batch.unforwarded == 0:
                self._sealed -= 1
            for output in batch.outputs:
                self._ready.append((batch, output))

    def _forward_ready(self) -> None:
        self._forward_head(self._ready, _always, _output, self._forwarded)

    def _forwarded(self, entry: tuple[_Batch[TIn, TOut], Message[TOut]]) -> None:
        batch = entry[0]
        batch.unforwarded -= 1
        if batch.unforwarded == 0:
            self._sealed -= 1

    def _step(self) -> None:
        self._collect()
        self._forward_ready()
        batch = self._open
        if batch.messages and (
            self._is_full(batch) or self._clock() - batch.opened_at >= self._max_wait_s
        ):
            self._try_seal()

    def poll(self) -> None:
        self._step()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = Deadline(timeout)
        try:
            while True:
                # Cleared before collecting, so a batch finishing right after
                # _collect() still wakes the wait below.
                self._batch_done.clear()
                self._collect()
                self._forward_ready()
                if self._open.messages:
                    self._try_seal()  # no waiting for max_batch_wait_ms on shutdown
                if not self._open.messages and self._sealed == 0:
                    break
                if deadline.expired:
                    log.warning(
                        "batch step join timed out; unfinished batches are not committed",
                        pending_batches=self._sealed,
                    )
                    break
                self._next.poll()
                if self._ready:
                    deadline.pause()  # waiting for the next step to make room
                else:
                    remaining = deadline.remaining
                    self._batch_done.wait(
                        JOIN_WAIT_S if remaining is None else min(JOIN_WAIT_S, remaining)
                    )
        finally:
            self._todo.put(None)
        self._next.close()
        self._next.join(deadline.remaining)

    def terminate(self) -> None:
        self._closed = True
        self._open = _Batch()
        self._ready.clear()
        self._todo.put(None)
        self._next.terminate()


def _always(entry: object) -> bool:
    return True  # only finished batches' outputs are in line


def _output(entry: tuple[_Batch[TIn, TOut], Message[TOut]]) -> Message[TOut]:
    return entry[1]
