"""What the Worker benchmarks share: the model they run (``--model``, default the tiny
vision-heavy one) and a timed Worker run (the lab's worker thread, timed from the first
record consumed until ``expected`` records have a verdict or a dead letter)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.bench.report import progress
from worker.config import Settings
from worker.lab import Lab, cached_tiny_model, metric_total, start_worker


def bench_lab() -> Lab:
    """A lab on the services ``GUARDSTREAM_*`` names (``eval "$(scripts/services env)"``);
    its workers run with the default settings; cleanup problems are progress lines."""
    return Lab(Settings(), defaults={"worker_id": "bench"}, on_cleanup_error=progress)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="model directory (default: the tiny vision-heavy model)"
    )


def heavy_model(path: str | None) -> str:
    """``path``, or the tiny vision-heavy model (real 560×560 tiles, 4 slots, patch 14),
    written into the cache on first use."""
    if path:
        return path
    return str(
        cached_tiny_model(
            vision_heavy=True,
            on_build=lambda target: progress(
                f"writing the tiny vision-heavy model to {target} (once, ~15 s)"
            ),
        )
    )


#: How often a timed run reads the counters. A check collects two or three metric
#: families under the GIL (~0.45 ms): every 5 ms, the checks took ~9 % of a core from
#: the worker they time (``bench overhead``, per-thread CPU); every 20 ms a quarter of
#: that, and the first and last readings are each at most 20 ms late (~0.5 % of a 4 s
#: run, one each way).
CHECK_INTERVAL_S = 0.02


@dataclass
class WorkerRun:
    events: int
    seconds: float  # first record consumed → last record accounted for
    metrics: Any
    first_consumed_at: float = 0.0  # wall clock (time.time()) of the first consume
    rss: list[tuple[float, int]] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan


def run_worker(
    settings: Settings,
    models: Any,
    expected: int,
    *,
    timeout_s: float,
    on_tick: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> WorkerRun:
    """Run a real Worker until ``expected`` records have a verdict or a dead letter.

    Time runs from the first record consumed (the group join is not counted) until
    the last verdict or dead letter is handed to the producer, to within
    ``CHECK_INTERVAL_S``. ``on_tick`` gets the count every 5 s (progress lines),
    ``on_progress`` at every check.
    """
    from worker.metrics import Metrics

    metrics = Metrics()

    # Polled every few ms in the worker's process: read the two counters only, not
    # the whole registry (its histograms made this ~0.4 ms of GIL time per tick).
    def accounted() -> int:
        return int(
            metric_total(metrics.verdicts, "guardstream_verdicts_total")
            + metric_total(metrics.dead_letters, "guardstream_dead_letters_total")
        )

    thread = start_worker(settings, models, metrics=metrics, thread_name="bench-worker")
    deadline = time.monotonic() + timeout_s
    first: float | None = None
    first_wall = 0.0
    last_report = 0.0
    done = 0
    try:
        while time.monotonic() < deadline and thread.error is None:
            if first is None and metric_total(
                metrics.events_consumed, "guardstream_events_consumed_total"
            ):
                first, first_wall = time.monotonic(), time.time()
            done = accounted()
            now = time.monotonic()
            if done >= expected:
                break
            if on_progress is not None:
                on_progress(done)
            if on_tick is not None and now - last_report >= 5:
                last_report = now
                on_tick(done)
            time.sleep(CHECK_INTERVAL_S)
        finished = time.monotonic()
    finally:
        thread.stop(timeout_s=120)
    if done < expected:
        raise TimeoutError(f"the worker accounted for {done} of {expected} events in {timeout_s}s")
    return WorkerRun(expected, finished - (first or finished), metrics, first_wall)
