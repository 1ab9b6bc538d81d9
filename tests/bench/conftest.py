"""The Kafka-based smoke tests use the local services (``scripts/services up``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quiet_worker_logs(quiet_worker_logs: None) -> None:
    """As ``guardstream bench`` does: worker logs at WARNING on stderr, stdout keeps the JSON."""
