"""Fixtures for tests that talk to the real local services (``scripts/services up``);
the service defaults, the tiny model and ``models`` are in ``tests/conftest.py``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ.get("GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    return os.environ.get("GUARDSTREAM_S3_ENDPOINT_URL", "http://127.0.0.1:9000")


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Callable[..., Any]:
    """Factory: s3_client() with the configured credentials, or override them."""

    def make(access_key: str | None = None, secret_key: str | None = None, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id=access_key or os.environ.get("AWS_ACCESS_KEY_ID", "guardstream"),
            aws_secret_access_key=secret_key
            or os.environ.get("AWS_SECRET_ACCESS_KEY", "guardstream-secret"),
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                **config,
            ),
        )

    return make


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """unique_name("topic") -> "gs-test-topic-<hex>"; valid as topic and bucket name."""

    def make(prefix: str = "t") -> str:
        return f"gs-test-{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def lab(
    new_lab: Callable[..., Any],
    kafka_bootstrap: str,
    s3_client: Callable[..., Any],
    unique_name: Callable[[str], str],
) -> Any:
    """Private topics (1 partition) and bucket for one test (``worker.lab.Lab``)."""
    return new_lab(kafka_bootstrap, s3_client(), unique_name("w"))


@pytest.fixture(params=["kafka-python", "confluent"])
def kafka_driver(request: pytest.FixtureRequest) -> str:
    """KAFKA_DRIVER for the worker under test: each driver in turn."""
    return str(request.param)
