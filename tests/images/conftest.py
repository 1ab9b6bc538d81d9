"""Fixtures for the image-stage tests.

Integration tests talk to the real S3 server (``scripts/services up``); the endpoint
and credentials default to ``scripts/services env`` and the same variables override.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.images.preprocess import tiling_spec_from_config
from worker.images.types import TilingSpec

PREPROCESSOR_CONFIG = (
    Path(__file__).parents[1] / "fixtures/llama_guard/mllama_preprocessor_config.json"
)


@pytest.fixture(scope="session")
def preprocessor_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(PREPROCESSOR_CONFIG.read_text())
    return config


@pytest.fixture(scope="session")
def spec(preprocessor_config: dict[str, Any]) -> TilingSpec:
    return tiling_spec_from_config(preprocessor_config)


@pytest.fixture(scope="session")
def hf_processor(preprocessor_config: dict[str, Any]) -> Any:
    """transformers' Mllama image processor: the PIL backend, which ``MllamaImageProcessor``
    and ``AutoProcessor`` resolve to without torchvision (guardstream does not install it)."""
    from transformers import MllamaImageProcessorPil

    settings = {
        key: value
        for key, value in preprocessor_config.items()
        if not key.startswith("_") and key not in ("image_processor_type", "processor_class")
    }
    return MllamaImageProcessorPil(**settings)


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    return os.environ.get("GUARDSTREAM_S3_ENDPOINT_URL", "http://127.0.0.1:9000")


@pytest.fixture(scope="session")
def s3_credentials() -> dict[str, str]:
    return {
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "guardstream"),
        "secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "guardstream-secret"),
    }


@pytest.fixture(scope="session")
def s3(s3_endpoint: str, s3_credentials: dict[str, str]) -> Any:
    from worker.images.fetcher import make_s3_client

    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return make_s3_client(
        s3_endpoint,
        region,
        8,
        access_key_id=s3_credentials["access_key_id"],
        secret_access_key=s3_credentials["secret_access_key"],
    )


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A fresh bucket, emptied and removed afterwards."""
    name = f"gs-test-img-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)
