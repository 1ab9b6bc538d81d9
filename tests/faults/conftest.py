"""Fault tests: they stop and start Kafka and S3, SIGKILL workers, and run for minutes.

They run only under ``scripts/test-faults`` (which sets ``GUARDSTREAM_FAULTS=1``), never
in the plain ``pytest`` run: ``scripts/test-faults`` points them at a *private* Kafka and
S3Proxy (own ports and data directory), so stopping those never disturbs the shared
services other tests and people use.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

ENABLED = os.environ.get("GUARDSTREAM_FAULTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="fault tests run under scripts/test-faults (private services)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from fault_harness import SUMMARIES

    if SUMMARIES:
        terminalreporter.section("fault test summaries")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _quiet_worker_logs(quiet_worker_logs: None) -> None:
    """In-process workers log at WARNING (JSON); per-event lines would drown the output."""


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ.get("GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def s3() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["GUARDSTREAM_S3_ENDPOINT_URL"],
        region_name=os.environ["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


@pytest.fixture
def make_lab(new_lab: Callable[..., Any], kafka_bootstrap: str, s3: Any) -> Callable[..., Any]:
    """make_lab(partitions=N): private topics and bucket (``worker.lab.Lab``)."""

    def make(partitions: int = 1) -> Any:
        return new_lab(kafka_bootstrap, s3, f"gs-fault-{uuid.uuid4().hex[:12]}", partitions)

    return make


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Any]]:
    """Collects ``WorkerProcess``es; whatever is still running at the end is killed."""
    started: list[Any] = []
    yield started
    for worker in started:
        if worker.running:
            worker.kill()
