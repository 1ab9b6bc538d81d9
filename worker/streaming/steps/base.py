"""The base of every step here: the closed and revoked checks, and forwarding, in one place.

A message whose partition was revoked is no longer ours: processing it wastes work, and
forwarding it to the commit step would commit an offset that belongs to the partition's
new owner. ``Step.submit`` drops such messages before a step sees them, and
``ForwardingStep`` re-checks when it hands finished work on (the partition may have been
revoked while the work ran), so no step can forget either check.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from worker.streaming.exceptions import InvalidState, MessageRejected
from worker.streaming.types import Message, ProcessingStep, TIn, TOut

Entry = TypeVar("Entry")


class Step(ProcessingStep[TIn]):
    """A step: ``submit`` refuses after ``close()`` and drops revoked messages, then
    calls ``_accept``. Subclasses implement ``_accept`` (raise ``MessageRejected`` when
    full), never ``submit``."""

    def __init__(self) -> None:
        self._closed = False

    def submit(self, message: Message[TIn]) -> None:
        if self._closed:
            raise InvalidState(f"{type(self).__name__} is closed")
        lease = message.lease  # ``message.revoked``, without a property call per step
        if lease is not None and lease.revoked:
            return
        self._accept(message)

    @abstractmethod
    def _accept(self, message: Message[TIn]) -> None: ...

    def close(self) -> None:
        self._closed = True


class ForwardingStep(Step[TIn], Generic[TIn, TOut]):
    """A step with a next step, and the two ways finished work is handed on."""

    def __init__(self, next_step: ProcessingStep[TOut]) -> None:
        super().__init__()
        self._next = next_step

    def _forward(self, message: Message[TOut]) -> bool:
        """Submit ``message`` to the next step; False when it is full. A message revoked
        while it was worked on is dropped (True: it needs no retry)."""
        lease = message.lease
        if lease is not None and lease.revoked:
            return True
        try:
            self._next.submit(message)
        except MessageRejected:
            return False
        return True

    def _forward_head(
        self,
        line: deque[Entry],
        ready: Callable[[Entry], bool],
        output: Callable[[Entry], Message[TOut] | None],
        forwarded: Callable[[Entry], None] | None = None,
    ) -> None:
        """Forward from the head of ``line``, in order, until an entry is not ``ready``
        or the next step is full. ``output`` gives the entry's message (None: nothing to
        forward; it may raise, e.g. for a failed task); ``forwarded`` is called for each
        entry that left the line."""
        while line:
            entry = line[0]
            if not ready(entry):
                return
            message = output(entry)
            if message is not None and not self._forward(message):
                return
            line.popleft()
            if forwarded is not None:
                forwarded(entry)

    def _forward_any_order(
        self,
        line: deque[Entry],
        ready: Callable[[Entry], bool],
        output: Callable[[Entry], Message[TOut] | None],
    ) -> deque[Entry]:
        """Forward every ``ready`` entry of ``line`` the next step accepts, in any order;
        return the entries kept: not ready yet, or refused (and all after a refusal, so
        the next step sees the rest in line order)."""
        keep: deque[Entry] = deque()
        refused = False
        for entry in line:
            if refused or not ready(entry):
                keep.append(entry)
                continue
            message = output(entry)
            if message is not None and not self._forward(message):
                keep.append(entry)
                refused = True
        return keep
