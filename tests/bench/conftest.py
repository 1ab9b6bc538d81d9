"""The Kafka-based smoke tests use the local services (``scripts/services up``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "guardstream")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "guardstream-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: talks to the real Kafka broker and S3 server")


@pytest.fixture(autouse=True)
def _quiet_worker_logs() -> Iterator[None]:
    """As ``guardstream bench`` does: worker logs at WARNING on stderr, stdout keeps the JSON."""
    import logging

    import structlog

    from worker.logs import configure_logging

    saved = structlog.get_config()
    names = ("kafka", "botocore", "urllib3", "transformers")
    levels = {name: logging.getLogger(name).level for name in names}
    configure_logging("WARNING", "json")
    yield
    structlog.configure(**saved)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
