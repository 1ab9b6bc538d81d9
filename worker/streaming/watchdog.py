"""StallWatchdog: a kafka-python call that never returns becomes an error.

Every blocking kafka-python consumer call (``poll``, ``commit``, ``close``) hands a
coroutine to the client's I/O thread and then waits for it on a ``threading.Event``
*without a timeout* (``NetworkSelector.run``): ``timeout_ms`` only bounds the
coroutine. If the I/O loop stops running it (thread dead or wedged), the call never
returns and the worker hangs silently, still "running". The processor wraps each such
call in ``StallWatchdog.guard``; ``kafka_commit`` takes the same watchdog explicitly.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from worker.streaming.exceptions import KafkaClientStalled

log = structlog.get_logger(__name__)


def _stack_of(thread: threading.Thread | None, limit: int = 12) -> str:
    frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
    return "".join(traceback.format_stack(frame, limit=limit)) if frame else "<not running>"


class StallWatchdog:
    """Turns a kafka-python call that never returns into ``KafkaClientStalled``.

    The loop thread wraps each blocking consumer call (``poll``, ``commit``,
    ``close``) in ``guard(what, timeout_s)``, ``timeout_s`` being the timeout
    the call was given. A daemon thread checks about once a second; a call
    still running ``stall_timeout_s`` after its own timeout, or running while
    the I/O thread is dead, is a wedged client. The watchdog then logs both
    threads' stacks and fails the client's pending ``run()`` waiters the way
    kafka-python does itself when its loop crashes
    (``NetworkSelector._fail_pending_waiters``, private, read defensively), so
    the blocked call raises ``KafkaClientStalled`` in the loop thread. Blocked
    elsewhere (a fake client, another kafka-python version), the call raises it
    as soon as it returns.
    """

    def __init__(self, consumer: Any, stall_timeout_s: float) -> None:
        self._net: Any = getattr(consumer, "_net", None)
        self._stall_timeout_s = stall_timeout_s
        self._lock = threading.Lock()
        # (what, deadline, calling thread) of the call in progress, if any.
        self._call: tuple[str, float, threading.Thread] | None = None
        self.error: KafkaClientStalled | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (once per run; a new run starts with no error)."""
        self.error = None
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._watch, name="stream-stall-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _io_thread(self) -> threading.Thread | None:
        thread = getattr(self._net, "_io_thread", None)
        return thread if isinstance(thread, threading.Thread) else None

    def _io_thread_died(self) -> bool:
        io = self._io_thread()
        if io is None or io.is_alive():
            return False
        # A loop that crashed with an exception is reported by kafka-python
        # itself (run() re-raises it): only a silent death is ours to report.
        return getattr(self._net, "_exception", None) is None

    @contextmanager
    def guard(self, what: str, timeout_s: float) -> Iterator[None]:
        if self.error is not None:
            raise self.error
        if self._io_thread_died():
            self.error = KafkaClientStalled(
                f"consumer.{what}(): the kafka-python I/O thread is dead"
            )
            raise self.error
        deadline = time.monotonic() + timeout_s + self._stall_timeout_s
        with self._lock:
            self._call = (what, deadline, threading.current_thread())
        try:
            yield
        finally:
            with self._lock:
                self._call = None
        if self.error is not None:
            raise self.error  # fired while the call was returning by itself

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self._stall_timeout_s / 4)):
            with self._lock:
                call = self._call
            if call is None or self.error is not None:
                continue
            what, deadline, caller = call
            dead = self._io_thread_died()
            if not dead and time.monotonic() < deadline:
                continue
            io = self._io_thread()
            self.error = KafkaClientStalled(
                f"consumer.{what}() still blocked {self._stall_timeout_s:.0f}s after its "
                f"timeout; kafka-python I/O thread "
                f"{'dead' if dead else 'alive' if io is not None else 'unknown'}"
            )
            log.error(
                "kafka client stalled: failing the blocked call",
                call=what,
                io_thread_stack=_stack_of(io),
                caller_stack=_stack_of(caller),
            )
            fail = getattr(self._net, "_fail_pending_waiters", None)
            if callable(fail):
                fail(self.error)


@contextmanager
def guard(watchdog: StallWatchdog | None, what: str, timeout_s: float) -> Iterator[None]:
    """``watchdog.guard(...)``, or nothing without a watchdog (a client used on its own)."""
    if watchdog is None:
        yield
    else:
        with watchdog.guard(what, timeout_s):
            yield
