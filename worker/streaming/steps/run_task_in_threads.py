"""RunTaskInThreads: blocking I/O (e.g. S3 fetches) in a bounded thread pool."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Generic

from worker.streaming.exceptions import MessageRejected
from worker.streaming.steps._util import JOIN_WAIT_S, Deadline
from worker.streaming.steps.base import ForwardingStep
from worker.streaming.types import Message, ProcessingStep, TIn, TOut


class _Skipped:
    """Result of a task whose partition was revoked before it started."""


_SKIPPED = _Skipped()


class _Done(Generic[TOut]):
    """The result of an inline call, waiting in line (a future needs a lock per task)."""

    __slots__ = ("value",)

    def __init__(self, value: TOut) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> TOut:
        return self.value


#: (message, future) of a threaded task; (message, result) of an inline one.
_Task = tuple[Message[TIn], "Future[TOut | _Skipped] | _Done[TOut]"]


class RunTaskInThreads(ForwardingStep[TIn, TOut], Generic[TIn, TOut]):
    """Run ``function(message) -> payload`` on up to ``max_workers`` threads.

    At most ``max_in_flight`` messages are held (queued, running, or done but
    not yet accepted downstream); beyond that ``submit`` raises
    ``MessageRejected`` so memory stays bounded and the consumer pauses.

    ``poll()`` forwards finished results as soon as they are ready, so the
    order may differ from the input order; the offset tracker makes commits
    correct anyway.

    The function must turn *expected* failures into values (e.g. a payload
    that becomes a dead letter). Anything it raises is treated as a bug: the
    exception is re-raised from ``poll()``/``join()`` in the consumer thread,
    which stops the processor without committing past the failed message.

    ``inline(message)`` (optional) names the messages that need no thread
    (nothing to fetch): ``function`` runs for them right in ``submit``, in
    the caller's thread, and the result goes downstream at once when nothing
    is held here, else it waits in line like a finished task (it still counts
    against ``max_in_flight``). A thread hop costs far more than such a call.
    An exception from an inline call propagates from ``submit``.

    ``wakeup`` (optional) is set whenever a task finishes, so a consumer loop
    waiting for room (backpressure) can wake up at once instead of sleeping.
    """

    def __init__(
        self,
        function: Callable[[Message[TIn]], TOut],
        next_step: ProcessingStep[TOut],
        *,
        max_in_flight: int,
        max_workers: int | None = None,
        thread_name_prefix: str = "guardstream-task",
        inline: Callable[[Message[TIn]], bool] | None = None,
        wakeup: threading.Event | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        super().__init__(next_step)
        self._function = function
        self._max_in_flight = max_in_flight
        self._inline = inline
        self._wakeup = wakeup
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers or max_in_flight, thread_name_prefix=thread_name_prefix
        )
        self._in_flight: deque[_Task[TIn, TOut]] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _run(self, message: Message[TIn]) -> TOut | _Skipped:
        # Checked in the worker: a revoked partition's queued work is skipped
        # instead of spending a thread (and an S3 request) on it.
        if message.revoked:
            return _SKIPPED
        return self._function(message)

    def _accept(self, message: Message[TIn]) -> None:
        if len(self._in_flight) >= self._max_in_flight:
            # Make room with what already finished before refusing.
            self._forward_done()
            if len(self._in_flight) >= self._max_in_flight:
                raise MessageRejected
        if self._inline is not None and self._inline(message):
            result = self._function(message)
            if not self._in_flight and self._forward(message.replace(result)):
                return
            self._in_flight.append((message, _Done(result)))
            return
        future = self._executor.submit(self._run, message)
        if self._wakeup is not None:
            wakeup = self._wakeup
            future.add_done_callback(lambda _: wakeup.set())
        self._in_flight.append((message, future))

    def _forward_done(self) -> None:
        """Forward every finished task the next step accepts; keep the rest."""
        if self._in_flight:
            self._in_flight = self._forward_any_order(self._in_flight, _task_done, _task_output)

    def poll(self) -> None:
        self._forward_done()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = Deadline(timeout)
        while self._in_flight:
            self._forward_done()
            if not self._in_flight or deadline.expired:
                break
            self._next.poll()
            pending = [f for _, f in self._in_flight if isinstance(f, Future) and not f.done()]
            if len(pending) < len(self._in_flight):
                # Finished work is waiting for the next step to make room.
                deadline.pause()
            else:
                # Sleep until some task finishes rather than spinning.
                remaining = deadline.remaining
                wait_futures(
                    pending,
                    timeout=JOIN_WAIT_S if remaining is None else min(JOIN_WAIT_S, remaining),
                    return_when="FIRST_COMPLETED",
                )
        if self._in_flight:
            # Unfinished work is dropped: not forwarded, so not committed, so
            # re-delivered after restart.
            self._in_flight.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._next.close()
        self._next.join(deadline.remaining)

    def terminate(self) -> None:
        self._closed = True
        self._in_flight.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._next.terminate()


def _task_done(task: _Task[TIn, TOut]) -> bool:
    return task[1].done()


def _task_output(task: _Task[TIn, TOut]) -> Message[TOut] | None:
    message, future = task
    result = future.result()  # re-raises an unexpected task exception
    return None if isinstance(result, _Skipped) else message.replace(result)
