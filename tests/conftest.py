"""Fixtures shared by the test packages that run the worker against the real local
services (``tests/integration``, ``tests/bench``, ``tests/faults``).

Start the services with ``scripts/services up``; the defaults below match
``scripts/services env``, and the same environment variables override them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

# The worker builds its S3 client from the standard AWS variables, like in production.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "guardstream")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "guardstream-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("GUARDSTREAM_S3_ENDPOINT_URL", "http://127.0.0.1:9000")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: talks to the real Kafka broker and S3 server")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Llama Guard 3 Vision model, written once per session."""
    from worker.engine import write_tiny_model

    return str(write_tiny_model(tmp_path_factory.mktemp("tiny-vision"), "vision", seed=0))


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
