"""The example set's images through the real S3 server and through ``--images-dir``, with
the tiny model: the same fetcher, the same scores, to the last bit."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from worker.commands.eval import evaluate
from worker.config import Settings
from worker.images.fetcher import make_s3_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "eval"
EXAMPLE_BUCKET = "guardstream-examples"


def test_same_scores_from_s3_and_from_a_directory(
    tmp_path: Path, tiny_model_path: str, quiet_worker_logs: None
) -> None:
    bucket = f"gs-test-eval-{uuid.uuid4().hex[:12]}"
    endpoint = os.environ["GUARDSTREAM_S3_ENDPOINT_URL"]
    s3 = make_s3_client(endpoint, os.environ.get("AWS_DEFAULT_REGION", "us-east-1"), 2)
    s3.create_bucket(Bucket=bucket)
    offline = tmp_path / "images"
    for path in sorted((EXAMPLES / "images" / EXAMPLE_BUCKET).rglob("*.png")):
        key = path.relative_to(EXAMPLES / "images" / EXAMPLE_BUCKET).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        (offline / bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, offline / bucket / key)

    # Example events with images (two with a sha256, two with two images), a text-only
    # one, and the one whose image is missing: a fetch dead letter either way.
    lines = (EXAMPLES / "labelled.jsonl").read_text().splitlines()
    with_images = [line for line in lines if '"image"' in line]
    chosen = with_images[:4] + [line for line in with_images if line.count('"image"') == 2]
    chosen += [lines[0]] + [line for line in lines if "missing.png" in line]
    chosen = [line.replace(f"s3://{EXAMPLE_BUCKET}/", f"s3://{bucket}/") for line in chosen]
    assert sum('"sha256"' in line for line in chosen) == 2 and len(chosen) == 8
    source = tmp_path / "labelled.jsonl"
    source.write_text("\n".join(chosen) + "\n")

    settings = Settings(
        model=tiny_model_path,
        device="cpu",
        dtype="float32",
        s3_endpoint_url=endpoint,
        allowed_buckets=bucket,
        fetch_max_attempts=2,
    )
    results = []
    for name, images_dir in (("s3", None), ("dir", offline)):
        out = tmp_path / name
        code = evaluate(settings, source, out, images_dir=images_dir, stdout=io.StringIO())
        assert code == 0
        scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
        metrics = json.loads((out / "metrics.json").read_text())
        results.append((scores, metrics))

    (from_s3, metrics_s3), (from_dir, metrics_dir) = results
    assert len(from_s3) == len(chosen) - 1
    assert from_s3 == from_dir  # every score bit for bit, every category
    assert metrics_s3["counts"]["dead_lettered"]["fetch"] == 1
    for key in ("overall", "categories", "recommended", "counts", "dead_letters"):
        assert metrics_s3[key] == metrics_dir[key]
    assert "tiny RANDOM-weight" in metrics_s3["note"]
