"""The decode memory budget: threads wait instead of allocating, the result is the same
as the plain path, the worker's loader uses it, and a burst of near-limit PNGs from S3
stays within it (peak RSS measured in fresh processes, with and without the budget)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from schemas.conversation import ImageContent
from worker.config import Settings
from worker.images.budget import DecodeBudget, decode_and_prepare, default_budget_bytes
from worker.images.decode import ImageLimits, decoded_bytes
from worker.images.types import TilingSpec
from worker.metrics import Metrics
from worker.pipeline import image_loader

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ImageLimits()
SPEC = TilingSpec()


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_a_thread_waits_until_its_image_fits() -> None:
    budget = DecodeBudget(100)
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with budget.reserve(70):
            first_in.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        with budget.reserve(50):
            order.append("second in")

    a = threading.Thread(target=hold)
    a.start()
    assert first_in.wait(10)
    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.2)
    assert order == [] and budget.in_use == 70  # 70 + 50 > 100: the second one waits
    release.set()
    a.join(10)
    b.join(10)
    assert order == ["first out", "second in"]
    assert budget.waits == 1 and budget.peak == 70 and budget.in_use == 0


def test_an_image_larger_than_the_budget_runs_alone_and_errors_release() -> None:
    budget = DecodeBudget(100)
    with budget.reserve(500):  # alone: admitted
        assert budget.in_use == 500
    with pytest.raises(RuntimeError), budget.reserve(60):
        raise RuntimeError("decoder failed")
    assert budget.in_use == 0


def test_decoded_bytes_from_the_header() -> None:
    rgb = encoded(Image.new("RGB", (100, 50)), "PNG")
    grey = encoded(Image.new("L", (100, 50)), "PNG")
    assert decoded_bytes(rgb, LIMITS) == 100 * 50 * (4 + 4)
    assert decoded_bytes(grey, LIMITS) == 100 * 50 * (1 + 4)
    # A large JPEG is decoded at a reduced scale (draft): the estimate follows it.
    big_jpeg = encoded(Image.new("RGB", (4000, 3000), (10, 20, 30)), "JPEG")
    assert decoded_bytes(big_jpeg, LIMITS) == 4000 * 3000 * 8
    assert decoded_bytes(big_jpeg, LIMITS, SPEC) <= 4000 * 3000 * 8 // 4
    assert decoded_bytes(b"not an image", LIMITS) == 0  # decode_image will say why


def test_the_budget_changes_nothing_in_the_result() -> None:
    images = [
        encoded(Image.new("RGB", (900, 700), (200, 30, 30)), "PNG"),
        encoded(Image.effect_noise((1300, 400), 50).convert("RGB"), "JPEG", quality=90),
        encoded(Image.new("LA", (320, 640), (90, 128)), "PNG"),
    ]
    budget = DecodeBudget(1_000_000)  # smaller than each image: every one runs alone
    for data in images:
        plain = decode_and_prepare(data, LIMITS, SPEC, "s")
        budgeted = decode_and_prepare(data, LIMITS, SPEC, "s", budget=budget)
        assert torch.equal(plain.pixel_values, budgeted.pixel_values)
        assert (plain.aspect_ratio_id, plain.num_tiles) == (
            budgeted.aspect_ratio_id,
            budgeted.num_tiles,
        )
    assert budget.in_use == 0


def test_the_default_is_sized_from_the_pixel_limit() -> None:
    assert Settings().effective_decode_budget_bytes == default_budget_bytes(50_000_000)
    assert Settings(image_max_pixels=10_000_000).effective_decode_budget_bytes == 160_000_000
    assert Settings(decode_memory_budget_mb=0).effective_decode_budget_bytes is None
    assert Settings(decode_memory_budget_mb=300).effective_decode_budget_bytes == 300_000_000


# --- the worker's loader: S3 → budgeted decode ------------------------------------------


def worker_loader(s3: Any, bucket: str, **settings: Any) -> Any:
    """The loader ``guardstream run`` builds (``pipeline.image_loader``)."""
    return image_loader(Settings(allowed_buckets=bucket, **settings), s3, TilingSpec(), Metrics())


@pytest.mark.integration
def test_the_workers_loader_waits_for_the_budget(s3: Any, bucket: str) -> None:
    data = encoded(Image.new("RGB", (1000, 1000), (1, 2, 3)), "PNG")  # 8 MB decoded
    s3.put_object(Bucket=bucket, Key="a.png", Body=data)
    item = ImageContent(type="image", s3_uri=f"s3://{bucket}/a.png")
    assert worker_loader(s3, bucket, decode_memory_budget_mb=0).keywords["budget"] is None
    loader = worker_loader(s3, bucket, decode_memory_budget_mb=1)  # one image at a time
    budget = loader.keywords["budget"]
    with ThreadPoolExecutor(4) as pool:
        prepared = list(pool.map(lambda _: loader(item), range(8)))
    plain = decode_and_prepare(data, LIMITS, SPEC, "s")
    assert all(torch.equal(p.pixel_values, plain.pixel_values) for p in prepared)
    assert budget.waits > 0 and budget.peak == decoded_bytes(data, LIMITS) and budget.in_use == 0


# --- peak RSS during a burst -----------------------------------------------------------

BURST = """
import json, os, resource, sys
from concurrent.futures import ThreadPoolExecutor
from schemas.conversation import ImageContent
from schemas.conversation import ImageContent
from worker.config import Settings
from worker.images.fetcher import make_s3_client
from worker.images.types import TilingSpec
from worker.metrics import Metrics
from worker.pipeline import image_loader
from worker.metrics import Metrics
from worker.pipeline import image_loader

endpoint, bucket, key, budget_mb, images = sys.argv[1:6]
settings = Settings(allowed_buckets=bucket, s3_endpoint_url=endpoint,
                    decode_memory_budget_mb=None if budget_mb == "default" else int(budget_mb))
s3 = make_s3_client(endpoint, "us-east-1", settings.fetch_concurrency,
                    access_key_id=os.environ["GS_KEY"], secret_access_key=os.environ["GS_SECRET"])
# What `guardstream run` builds: with a budget, it also fixes glibc's mmap threshold.
load = image_loader(settings, s3, TilingSpec(), Metrics())
budget = load.keywords["budget"]
item = ImageContent(type="image", s3_uri=f"s3://{bucket}/{key}")
load(item)  # imports, allocator warm-up, lazy tables, the S3 connection
mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
baseline = mb()
with ThreadPoolExecutor(settings.fetch_concurrency) as pool:
    done = list(pool.map(lambda _: load(item), range(int(images))))
print(json.dumps({"baseline_mb": round(baseline), "peak_mb": round(mb()),
                  "budget_mb": round(budget.max_bytes / 1e6) if budget else 0,
                  "waits": budget.waits if budget else 0, "images": len(done)}))
"""


def burst(
    s3_endpoint: str, s3_credentials: dict[str, str], bucket: str, budget_mb: str, images: int
) -> dict[str, int]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "GS_KEY": s3_credentials["access_key_id"],
        "GS_SECRET": s3_credentials["secret_access_key"],
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BURST,
            s3_endpoint,
            bucket,
            "near-limit.png",
            budget_mb,
            str(images),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.integration
def test_peak_rss_of_a_burst_of_near_limit_pngs(
    s3: Any, s3_endpoint: str, s3_credentials: dict[str, str], bucket: str
) -> None:
    """16 PNGs of 40 MP (under the 50 MP limit; PNGs have no draft decode) from S3
    through the worker's loader at the default fetch concurrency (16 threads). Without
    the budget every thread holds its pixels at once; with the default budget
    (2 × the largest admissible image) at most a few do. (The fixed mmap threshold alone
    bounds nothing: measured once, +2719 MB for the same burst.)"""
    side = (6400, 6250)  # 40 MP
    s3.put_object(
        Bucket=bucket,
        Key="near-limit.png",
        Body=encoded(Image.new("RGB", side, (120, 60, 200)), "PNG"),  # ~120 KB
    )
    per_image_mb = side[0] * side[1] * 8 / 1e6
    budget = default_budget_bytes(LIMITS.max_pixels)
    runs = {
        name: burst(s3_endpoint, s3_credentials, bucket, budget_mb, 16)
        for name, budget_mb in (("without", "0"), ("with", "default"))
    }
    grown = {name: r["peak_mb"] - r["baseline_mb"] for name, r in runs.items()}
    print(
        f"\nRSS, burst of 16 × 40 MP PNGs from S3 through the worker's loader, 16 threads "
        f"(one ≈ {per_image_mb:.0f} MB decoded), peak over a {runs['without']['baseline_mb']} "
        f"MB baseline: without budget +{grown['without']} MB; default budget "
        f"({runs['with']['budget_mb']} MB) +{grown['with']} MB ({runs['with']['waits']} waits)"
    )
    assert all(r["images"] == 16 for r in runs.values())
    assert runs["with"]["budget_mb"] == round(budget / 1e6) and runs["with"]["waits"] > 0
    # The reservation is an upper estimate of what a decode holds: growth stays within
    # the budget plus allocator slack; without it, several images' worth more.
    assert grown["with"] <= budget / 1e6 + 200
    assert grown["without"] > grown["with"] + 2 * per_image_mb
