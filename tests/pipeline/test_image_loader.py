"""The worker's image loader: the image stage (``load_image``) with the settings'
allowlist, limits and retries, and its observer counting into the metrics."""

from __future__ import annotations

import pytest
from images.image_builders import FakeS3, encode, noise_rgb

from schemas.conversation import ImageContent
from worker.config import Settings
from worker.images.exceptions import BucketNotAllowed
from worker.images.types import TilingSpec
from worker.metrics import Metrics
from worker.pipeline import image_loader

PNG = encode(noise_rgb(64, 32), "PNG")


def item(uri: str = "s3://bucket/k.png") -> ImageContent:
    return ImageContent(type="image", s3_uri=uri)


def test_image_loader_counts_bytes_and_seconds() -> None:
    metrics = Metrics()
    load = image_loader(Settings(), FakeS3(PNG), TilingSpec(), metrics)
    load(item())
    load(item("s3://bucket/other.png"))
    sample = metrics.registry.get_sample_value
    assert sample("guardstream_fetched_bytes_total") == 2 * len(PNG)
    assert sample("guardstream_fetch_seconds_count") == 2
    assert sample("guardstream_fetch_seconds_sum") >= 0


def test_image_loader_applies_the_settings_allowlist() -> None:
    metrics = Metrics()
    s3 = FakeS3(PNG)
    load = image_loader(Settings(allowed_buckets=("mine",)), s3, TilingSpec(), metrics)
    with pytest.raises(BucketNotAllowed):
        load(item("s3://theirs/k.png"))
    assert s3.calls == []
    assert metrics.registry.get_sample_value("guardstream_fetched_bytes_total") == 0
