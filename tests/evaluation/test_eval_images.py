"""``--images-dir``: files stand in for S3 objects behind the worker's own fetcher, so the
same allowlist, limits and sha256 check apply, and the same tiles come out."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from eval_builders import png_bytes
from eval_doubles import KnownScoreClassifier, known_score_models

from schemas.conversation import ImageContent
from worker.config import Settings
from worker.evaluation.images import DirectoryObjects
from worker.evaluation.run import LoadImage, image_stage
from worker.images.decode import ImageLimits, decode_image
from worker.images.exceptions import (
    AccessDenied,
    BucketNotAllowed,
    ChecksumMismatch,
    ImageTooLarge,
    ObjectNotFound,
    TooManyPixels,
)
from worker.images.preprocess import prepare_image

MODELS = known_score_models(KnownScoreClassifier())


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "bucket" / "a").mkdir(parents=True)
    (root / "bucket" / "a" / "red.png").write_bytes(png_bytes((200, 30, 30)))
    (root / "bucket" / "big.png").write_bytes(png_bytes((0, 0, 0), (3000, 2000)))
    return root


def stage(root: Path, **settings: Any) -> LoadImage:
    return image_stage(Settings(**settings), MODELS, DirectoryObjects(root))


def item(uri: str, sha256: str | None = None) -> ImageContent:
    return ImageContent(type="image", s3_uri=uri, sha256=sha256)


def test_a_file_becomes_the_tiles_its_bytes_make(images: Path) -> None:
    data = (images / "bucket" / "a" / "red.png").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    prepared = stage(images)(item("s3://bucket/a/red.png", digest))
    expected = prepare_image(decode_image(data, ImageLimits()), MODELS.tiling, digest)
    assert prepared.sha256 == digest
    assert torch.equal(prepared.pixel_values, expected.pixel_values)
    assert prepared.aspect_ratio_id == expected.aspect_ratio_id


def test_the_worker_s_checks_apply(images: Path, tmp_path: Path) -> None:
    prepare = stage(images)
    with pytest.raises(ObjectNotFound):
        prepare(item("s3://bucket/a/missing.png"))
    with pytest.raises(ObjectNotFound):  # a directory is no object
        prepare(item("s3://bucket/a"))
    with pytest.raises(ChecksumMismatch):
        prepare(item("s3://bucket/a/red.png", "0" * 64))
    with pytest.raises(ImageTooLarge):
        stage(images, image_max_bytes=100)(item("s3://bucket/a/red.png"))
    with pytest.raises(TooManyPixels):
        stage(images, image_max_pixels=1_000_000)(item("s3://bucket/big.png"))
    with pytest.raises(BucketNotAllowed):
        stage(images, allowed_buckets="other")(item("s3://bucket/a/red.png"))


def test_a_symlink_cannot_lead_out_of_the_tree(images: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes((1, 2, 3)))
    (images / "bucket" / "link.png").symlink_to(outside)
    with pytest.raises(AccessDenied):
        stage(images)(item("s3://bucket/link.png"))
