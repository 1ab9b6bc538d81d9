"""Deterministic audit sampling: the same event id always gets the same answer, so a
re-delivered or replayed event is sampled (or not) exactly as the first time."""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def sample_point(event_id: str, seed: str = "") -> float:
    """A uniform point in [0, 1) from sha256(seed NUL event_id)."""
    digest = hashlib.sha256(seed.encode("utf-8") + b"\x00" + event_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def audit_sampled(event_id: str, seed: str, rate: float) -> bool:
    """True for a share ``rate`` of event ids (0: none, 1: all)."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return sample_point(event_id, seed) < rate
