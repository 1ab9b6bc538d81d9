"""CommitOffsets: the terminal step of an at-least-once pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from worker.streaming.exceptions import CommitFailed
from worker.streaming.offsets import OffsetTracker
from worker.streaming.steps.base import Step
from worker.streaming.types import Commit, Message, Partition

log = structlog.get_logger(__name__)


class CommitOffsets(Step[Any]):
    """Mark arriving messages done and commit the watermarks periodically.

    A message reaches this step only when all its effects are durable (e.g.
    after ``Produce`` saw the acks), so committing its offset is safe; a crash
    before the commit re-delivers it: at-least-once.

    Commits run at most every ``commit_interval_s`` (0: on every poll) and once
    more in ``join()``, and only for partitions whose watermark moved.
    ``CommitFailed`` (rebalance in progress, timeout) is logged and retried at
    the next interval; anything else propagates and stops the processor.
    """

    def __init__(
        self,
        tracker: OffsetTracker,
        commit: Commit,
        *,
        commit_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._tracker = tracker
        self._commit = commit
        self._interval = commit_interval_s
        self._clock = clock
        self._last_commit_at = clock()
        self._committed: dict[Partition, int] = {}

    @property
    def committed(self) -> dict[Partition, int]:
        """What this step last committed successfully (a copy)."""
        return dict(self._committed)

    def _accept(self, message: Message[Any]) -> None:
        self._tracker.complete(message.partition, message.offset)

    def _maybe_commit(self, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_commit_at < self._interval:
            return
        self._last_commit_at = now
        offsets = self._tracker.committable()
        changed = {p: o for p, o in offsets.items() if self._committed.get(p) != o}
        if not changed:
            return
        try:
            self._commit(changed)
        except CommitFailed as exc:
            log.warning("offset commit failed; retrying later", error=str(exc))
            return
        # Rebuilt from the tracker so forgotten (revoked) partitions drop out.
        self._committed = offsets

    def poll(self) -> None:
        self._maybe_commit(force=False)

    def join(self, timeout: float | None = None) -> None:
        self._maybe_commit(force=True)
