"""A real ``Worker`` consuming on a background thread, stopped (drained) by the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.clients import WorkerClients
    from worker.config import Settings
    from worker.engine.models import Models
    from worker.health import HealthState
    from worker.metrics import Metrics
    from worker.pipeline import Worker


class WorkerThread:
    """``worker.run()`` on a daemon thread; what it raised is kept in ``error``."""

    def __init__(self, worker: Worker, name: str = "lab-worker") -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(handle_signals=False)
        except BaseException as exc:  # surfaced in the caller's thread by ``stop``
            self.error = exc

    def start(self) -> WorkerThread:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop the worker (it drains and commits), wait for it, re-raise its error."""
        self.worker.stop()
        self._thread.join(timeout=timeout_s)
        if self.error is not None:
            raise self.error


def start_worker(
    settings: Settings,
    models: Models,
    *,
    clients: WorkerClients | None = None,
    s3_client: Any = None,
    metrics: Metrics | None = None,
    health: HealthState | None = None,
    thread_name: str = "lab-worker",
) -> WorkerThread:
    """Build a Worker (clients from ``settings`` unless given) and start it on a thread."""
    from worker.clients import connect
    from worker.pipeline import Worker

    worker = Worker(
        settings,
        models,
        clients or connect(settings, s3_client=s3_client),
        metrics=metrics,
        health=health,
    )
    return WorkerThread(worker, thread_name).start()


@contextmanager
def running_worker(
    settings: Settings, models: Models, *, join_timeout_s: float = 120.0, **options: Any
) -> Iterator[Worker]:
    """A Worker consuming in a background thread while the block runs; stopped (drained)
    on exit, and whatever it raised is raised here. ``options``: see ``start_worker``."""
    thread = start_worker(settings, models, **options)
    try:
        yield thread.worker
    finally:
        thread.stop(join_timeout_s)


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds (True) or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
