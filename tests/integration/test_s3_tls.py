"""Images over HTTPS from an S3 server whose certificate a private CA signed (the
``s3-tls`` S3Proxy of ``scripts/services up secure``). The worker trusts the CA the AWS
way: ``AWS_CA_BUNDLE`` (botocore reads it for every client; ``ca_bundle`` in an AWS
config profile works the same)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from secure_harness import SecureServices

from worker.engine.models import Models
from worker.lab import Lab, conversation, png_bytes, running_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure() -> SecureServices:
    services = SecureServices.from_env()
    if not services.reachable():
        pytest.skip("the secure profile is not running (scripts/services up secure)")
    return services


@pytest.fixture
def tls_lab(secure: SecureServices, new_lab: Callable[..., Lab], kafka_bootstrap: str) -> Lab:
    s3 = boto3.client(
        "s3",
        endpoint_url=secure.s3_endpoint,
        verify=secure.tls("ca.pem"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "guardstream"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "guardstream-secret"),
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    lab: Lab = new_lab(kafka_bootstrap, s3, f"gs-tls-{uuid.uuid4().hex[:12]}")
    return lab


def test_images_over_https_with_a_private_ca(
    secure: SecureServices,
    tls_lab: Lab,
    models: Models,
    tiny_model_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", secure.tls("ca.pem"))
    uri = tls_lab.put_image("a.png", png_bytes())
    tls_lab.produce_events([conversation("over-tls", images=(uri,))])
    settings = tls_lab.worker_settings(model=tiny_model_path, s3_endpoint_url=secure.s3_endpoint)
    with running_worker(settings, models) as worker:
        outputs = tls_lab.read_outputs(expected=1, timeout_s=90)
        fetched = worker.metrics.registry.get_sample_value("guardstream_fetched_bytes_total")
    assert set(outputs.verdicts) == {"over-tls"}, outputs.dead_letters
    assert (fetched or 0) > 0


def test_an_untrusted_s3_certificate_is_named_in_the_dead_letter(
    secure: SecureServices,
    tls_lab: Lab,
    models: Models,
    tiny_model_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", secure.tls("rogue-ca.pem"))
    uri = tls_lab.put_image("a.png", png_bytes())
    tls_lab.produce_events([conversation("untrusted", images=(uri,))])
    settings: Any = tls_lab.worker_settings(
        model=tiny_model_path,
        s3_endpoint_url=secure.s3_endpoint,
        fetch_max_attempts=1,  # no retry budget to wait out
    )
    with running_worker(settings, models):
        outputs = tls_lab.read_outputs(expected=1, timeout_s=90)
    [[(headers, _)]] = outputs.dead_letters.values()
    assert headers.stage.value == "fetch"
    assert "CERTIFICATE_VERIFY_FAILED" in headers.error_message, headers.error_message
