"""Small helpers shared by the steps."""

from __future__ import annotations

import time

# How long join() loops sleep between attempts: short enough not to add
# latency to shutdown, long enough not to spin a core.
JOIN_SLEEP_S = 0.005
# Upper bound of a join() wait on a future/queue: completion wakes it earlier.
JOIN_WAIT_S = 0.05


class Deadline:
    """A join() budget: ``None`` means wait forever."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + max(0.0, timeout)

    @property
    def remaining(self) -> float | None:
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def pause(self, seconds: float = JOIN_SLEEP_S) -> None:
        remaining = self.remaining
        time.sleep(seconds if remaining is None else min(seconds, remaining))
