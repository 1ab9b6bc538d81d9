"""Facts about the machine and this process, reported beside every figure: what it is
(``machine_info``), what a phase cost (``phase``: CPU seconds and load), memory (RSS)."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    import numpy
    import PIL
    import torch
    import transformers

    from worker import __version__

    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "torch_threads": torch.get_num_threads(),
        "guardstream": __version__,
        # Other processes competing for the CPU make every figure smaller.
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        import kafka

        info["kafka_python"] = kafka.__version__
    except Exception:  # not needed by every benchmark
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


@contextmanager
def phase() -> Iterator[dict[str, float]]:
    """This process's CPU seconds (all threads) and the load average over a phase.

    Other processes on the machine slow a phase down without changing its CPU time,
    so ``cpu_s`` tells contention apart from work.
    """
    started = os.times()
    figures: dict[str, float] = {}
    try:
        yield figures
    finally:
        ended = os.times()
        cpu = (ended.user - started.user) + (ended.system - started.system)
        figures["cpu_s"] = round(cpu, 1)
        figures["load_avg_1m"] = round(os.getloadavg()[0], 2)


def rss_bytes() -> int:
    """Resident set size of this process now (Linux); peak RSS elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RssSampler:
    """Samples RSS every ``interval_s`` on a daemon thread: ``samples`` = [(t, bytes)]."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_bytes()))
            if self._stop.wait(self.interval_s):
                return
