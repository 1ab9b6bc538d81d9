"""A one-line progress display (events, events/s, ETA), drawn only on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def progress_line(done: int, total: int, elapsed_s: float) -> str:
    """``  120/500 events  24%  18.5 events/s  ETA 0:20`` (pure)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    share = f"{100 * done / total:3.0f}%" if total else "   -"
    eta = _clock((total - done) / rate) if rate > 0 and total >= done else "-:--"
    width = len(str(total))
    return f"  {done:>{width}}/{total} events  {share}  {rate:.1f} events/s  ETA {eta}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``advance(n)`` as events finish; redraws at most every ``interval_s``."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        enabled: bool | None = None,
        interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._enabled = stream.isatty() if enabled is None else enabled
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None

    def advance(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if not self._enabled:
            return
        if (
            self._drawn_at is None
            or now - self._drawn_at >= self._interval_s
            or (self.done >= self.total)
        ):
            self._drawn_at = now
            self._stream.write("\r" + progress_line(self.done, self.total, now - self._started))
            self._stream.flush()

    def close(self) -> None:
        if self._enabled and self._drawn_at is not None:
            self._stream.write("\n")
            self._stream.flush()
