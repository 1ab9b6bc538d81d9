"""The fetcher against the real S3 server (S3Proxy from ``scripts/services up``)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import torch
from botocore.exceptions import ClientError
from image_builders import encode, noise_rgb

from schemas.conversation import ImageContent
from worker.images.decode import ImageLimits, decode_image
from worker.images.exceptions import (
    BucketNotAllowed,
    ChecksumMismatch,
    FetchRetriesExhausted,
    ImageTooLarge,
    InvalidImageUri,
    ObjectNotFound,
)
from worker.images.fetcher import ImageFetcher, RetryPolicy, make_s3_client
from worker.images.load import load_image
from worker.images.types import TilingSpec
from worker.images.uri import BucketAllowlist

pytestmark = pytest.mark.integration


def no_sleep(seconds: float) -> None:
    pass


def item(uri: str, sha256: str | None = None) -> ImageContent:
    return ImageContent(type="image", s3_uri=uri, sha256=sha256)


class RecordingS3:
    """Passes calls through, keeping each GetObject response to inspect its body."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.responses: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.client.get_object(**kwargs)
        self.responses.append(response)
        return response


def test_load_image(s3: Any, bucket: str, spec: TilingSpec, hf_processor: Any) -> None:
    data = encode(noise_rgb(900, 600), "JPEG", quality=92)
    key = "tenant/ü ñ/%2F literal.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    sha = hashlib.sha256(data).hexdigest()
    fetcher = ImageFetcher(s3, BucketAllowlist([bucket]), ImageLimits())
    uri = f"s3://{bucket}/{key}"
    fetched = fetcher.fetch(item(uri, sha))
    assert (fetched.data, fetched.sha256, fetched.s3_uri) == (data, sha, uri)
    prepared = load_image(fetcher, item(uri, sha), spec)
    reference = hf_processor(images=[[decode_image(data, ImageLimits())]], return_tensors="pt")
    assert torch.equal(prepared.pixel_values, reference["pixel_values"][0, 0])
    assert prepared.sha256 == sha


def test_no_such_key(s3: Any, bucket: str) -> None:
    fetcher = ImageFetcher(s3, BucketAllowlist(), ImageLimits(), sleep=no_sleep)
    with pytest.raises(ObjectNotFound) as caught:
        fetcher.fetch(item(f"s3://{bucket}/missing.png"))
    assert caught.value.permanent and caught.value.attempts == 1


def test_no_such_bucket(s3: Any) -> None:
    fetcher = ImageFetcher(s3, BucketAllowlist(), ImageLimits(), sleep=no_sleep)
    with pytest.raises(ObjectNotFound):
        fetcher.fetch(item("s3://gs-test-img-no-such-bucket-0/x.png"))


def test_bucket_not_allowed(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="x.png", Body=encode(noise_rgb(8, 8), "PNG"))
    recording = RecordingS3(s3)
    fetcher = ImageFetcher(recording, BucketAllowlist(["gs-some-other-bucket"]), ImageLimits())
    with pytest.raises(BucketNotAllowed):
        fetcher.fetch(item(f"s3://{bucket}/x.png"))
    with pytest.raises(InvalidImageUri):  # S3Proxy would answer 400; we never ask
        fetcher.fetch(item(f"s3://gs-some-other-bucket/../{bucket}/x.png"))
    assert recording.responses == []


def test_oversize_refused_without_reading_the_body(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="big.bin", Body=b"\0" * 3_000_000)
    recording = RecordingS3(s3)
    fetcher = ImageFetcher(recording, BucketAllowlist(), ImageLimits(max_bytes=1_000_000))
    with pytest.raises(ImageTooLarge) as caught:
        fetcher.fetch(item(f"s3://{bucket}/big.bin"))
    assert caught.value.size == 3_000_000
    assert recording.responses[0]["Body"]._amount_read == 0


def test_sha256_mismatch(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="x.png", Body=encode(noise_rgb(8, 8), "PNG"))
    fetcher = ImageFetcher(s3, BucketAllowlist(), ImageLimits())
    with pytest.raises(ChecksumMismatch):
        fetcher.fetch(item(f"s3://{bucket}/x.png", "f" * 64))


def test_wrong_credentials_are_retried_then_exhausted(
    s3_endpoint: str, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="x.png", Body=encode(noise_rgb(8, 8), "PNG"))
    wrong = make_s3_client(
        s3_endpoint, "us-east-1", 2, access_key_id="guardstream", secret_access_key="nope"
    )
    fetcher = ImageFetcher(
        wrong, BucketAllowlist(), ImageLimits(), RetryPolicy(max_attempts=2), sleep=no_sleep
    )
    with pytest.raises(FetchRetriesExhausted) as caught:
        fetcher.fetch(item(f"s3://{bucket}/x.png"))
    assert isinstance(caught.value.last_error, ClientError)
    assert "SignatureDoesNotMatch" in str(caught.value)


def test_server_down_retries_then_exhausted() -> None:
    down = make_s3_client(
        "http://127.0.0.1:1", "us-east-1", 2, access_key_id="k", secret_access_key="s"
    )
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=4, base_delay_s=0.01)
    fetcher = ImageFetcher(down, BucketAllowlist(), ImageLimits(), retry, sleep=sleeps.append)
    with pytest.raises(FetchRetriesExhausted) as caught:
        fetcher.fetch(item("s3://bucket/x.png"))
    assert caught.value.attempts == 4 and len(sleeps) == 3
    assert "EndpointConnectionError" in str(caught.value)
