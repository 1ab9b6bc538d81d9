"""Fixtures shared by the test packages that run the worker against the real local
services (``tests/integration``, ``tests/bench``, ``tests/faults``).

Start the services with ``scripts/services up``; the defaults below match
``scripts/services env``, and the same environment variables override them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The worker builds its S3 client from the standard AWS variables, like in production.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "guardstream")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "guardstream-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("GUARDSTREAM_S3_ENDPOINT_URL", "http://127.0.0.1:9000")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: talks to the real Kafka broker and S3 server")


#: What the tests' in-process workers start from (``Lab.worker_settings``): the tiny
#: model on CPU, short batch waits and commit intervals, a small fetch retry budget.
TEST_WORKER: dict[str, Any] = {
    "device": "cpu",
    "dtype": "float32",
    "max_batch_wait_ms": 5,
    "commit_interval_ms": 200,
    "fetch_max_attempts": 3,
    "fetch_max_seconds": 10.0,
    "session_timeout_ms": 10_000,
}


@pytest.fixture(scope="session")
def new_lab() -> Callable[..., Any]:
    """new_lab(bootstrap, s3, name, partitions=1): a created ``worker.lab.Lab`` (private
    topics and bucket) whose workers start from ``TEST_WORKER``."""
    from worker.config import Settings
    from worker.lab import Lab

    def make(bootstrap: str, s3: Any, name: str, partitions: int = 1) -> Lab:
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            s3_endpoint_url=os.environ["GUARDSTREAM_S3_ENDPOINT_URL"],
        )
        lab = Lab(settings, name=name, partitions=partitions, s3=s3, defaults=TEST_WORKER)
        return lab.create()

    return make


@pytest.fixture(scope="session")
def test_worker() -> dict[str, Any]:
    """``TEST_WORKER``, for tests that build their own ``Lab`` (a secured broker, say)."""
    return dict(TEST_WORKER)


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    """A tiny random Llama Guard 3 Vision model, from the shared cache (written once)."""
    from worker.lab import cached_tiny_model

    return str(cached_tiny_model("vision"))


@pytest.fixture(scope="session")
def models(tiny_model_path: str) -> Any:
    """The tiny model loaded on CPU in fp32 (``worker.engine.models.Models``)."""
    from worker.config import Settings
    from worker.pipeline import load_models

    return load_models(Settings(model=tiny_model_path, device="cpu", dtype="float32"))


@pytest.fixture
def quiet_worker_logs() -> Iterator[None]:
    """Worker logs at WARNING, as JSON on stderr (as ``guardstream bench`` does): per-event
    lines would drown the output of runs with thousands of events."""
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
