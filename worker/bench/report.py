"""What a benchmark prints, and the figures it computes.

Every benchmark prints exactly one JSON line on stdout (``emit``); progress goes to
stderr (``progress``). Baselines run in the same process run as guardstream.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's one line of output."""
    print(json.dumps(result, ensure_ascii=False), flush=True)


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline > 0 else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
    }


def configure_quiet_logging(level: str = "WARNING") -> None:
    """Worker logs at WARNING to stderr: per-verdict INFO lines would flood the terminal."""
    from worker.logs import configure_logging

    configure_logging(level, "json", False)
