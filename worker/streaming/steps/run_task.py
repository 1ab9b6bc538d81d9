"""RunTask: apply a cheap function inline, in the consumer loop's thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from worker.streaming.exceptions import MessageRejected
from worker.streaming.steps._util import Deadline
from worker.streaming.steps.base import ForwardingStep
from worker.streaming.types import Message, ProcessingStep, TIn, TOut


class RunTask(ForwardingStep[TIn, TOut], Generic[TIn, TOut]):
    """``function(message) -> new payload``, then forward.

    The function gets the whole ``Message`` (not only the payload) so it can
    read the raw record, e.g. to build a dead letter; wrap a payload-only
    function as ``lambda m: f(m.payload)``. Exceptions it raises propagate and
    stop the consumer: turn expected failures into values (dead letters).

    When the next step is full, the computed result is kept (one message) and
    re-offered on ``poll()``: the function never runs twice for one message.
    """

    def __init__(
        self, function: Callable[[Message[TIn]], TOut], next_step: ProcessingStep[TOut]
    ) -> None:
        super().__init__(next_step)
        self._function = function
        self._carry: Message[TOut] | None = None

    def _accept(self, message: Message[TIn]) -> None:
        if self._carry is not None and not self._flush_carry():
            raise MessageRejected
        result = message.replace(self._function(message))
        if not self._forward(result):
            # Accept the message anyway and hold its result: recomputing on retry
            # could be expensive or non-idempotent.
            self._carry = result

    def _flush_carry(self) -> bool:
        if self._carry is None:
            return True
        if not self._forward(self._carry):
            return False
        self._carry = None
        return True

    def poll(self) -> None:
        self._flush_carry()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = Deadline(timeout)
        while not self._flush_carry():
            if deadline.expired:
                break
            self._next.poll()
            deadline.pause()
        self._next.close()
        self._next.join(deadline.remaining)

    def terminate(self) -> None:
        self._closed = True
        self._carry = None
        self._next.terminate()
