"""``guardstream bench preprocess``: 12-megapixel JPEGs → pixel tensors, images/s.

guardstream: ``decode_image`` (libjpeg draft: decode at 1/2-1/8 scale when the tile
canvas is smaller) + ``prepare_image`` (PIL resize, one table lookup per value), with
the sha256 the fetcher computes, on a thread pool of FETCH_CONCURRENCY threads as the
worker runs it. Baseline (the model card): ``Image.open().convert("RGB")`` +
``MllamaImageProcessor``, one image after the other.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from worker.bench.machine import machine_info
from worker.bench.report import progress, ratio
from worker.lab import PhotoMaker

NAME = "preprocess"
HELP = "12 MP JPEGs to pixel tensors: guardstream (draft decode, thread pool) vs processor"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=24, help="distinct JPEGs (default 24)")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument(
        "--threads", type=int, default=None, help="pool size (default: FETCH_CONCURRENCY)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from PIL import Image

    from worker.config import Settings
    from worker.engine.tiny import PREPROCESSOR_SETTINGS
    from worker.images.decode import ImageLimits, decode_image
    from worker.images.preprocess import prepare_image
    from worker.images.types import PreparedImage, TilingSpec

    threads = args.threads or Settings().fetch_concurrency
    spec = TilingSpec()  # Llama 3.2 Vision's: 560×560 tiles, up to 4, CLIP mean/std
    processor = _processor(PREPROCESSOR_SETTINGS)
    limits = ImageLimits()
    maker = PhotoMaker(args.width, args.height)
    progress(f"encoding {args.images} distinct {args.width}x{args.height} JPEGs")
    jpegs = [maker.jpeg(args.width, args.height, seed=i) for i in range(args.images)]

    def guardstream(data: bytes, draft: bool = True) -> PreparedImage:
        sha = hashlib.sha256(data).hexdigest()
        image = decode_image(data, limits, draft_for=spec if draft else None)
        return prepare_image(image, spec, sha)

    def baseline(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        return processor(images=[[image]], return_tensors="pt")

    # Warm up both paths (lazy imports, tables), and compare their pixels on image 0.
    reference = baseline(jpegs[0])
    want = reference["pixel_values"][0, 0].float()
    drafted = guardstream(jpegs[0]).pixel_values
    exact = guardstream(jpegs[0], draft=False).pixel_values

    progress(f"baseline: Image.open().convert + {type(processor).__name__}, sequential")
    started = time.perf_counter()
    for data in jpegs:
        baseline(data)
    baseline_s = time.perf_counter() - started

    progress("guardstream, 1 thread")
    started = time.perf_counter()
    for data in jpegs:
        guardstream(data)
    single_s = time.perf_counter() - started

    progress(f"guardstream, {threads} threads")
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-prep") as pool:
        list(pool.map(guardstream, jpegs[:threads]))  # start the threads
        started = time.perf_counter()
        results = list(pool.map(guardstream, jpegs))
        pool_s = time.perf_counter() - started
    assert len(results) == len(jpegs)

    count = len(jpegs)
    value = count / pool_s
    base = count / baseline_s
    return {
        "benchmark": NAME,
        "unit": "images/s",
        "images": count,
        "image_size": f"{args.width}x{args.height}",
        "jpeg_mb_mean": round(sum(map(len, jpegs)) / count / 1e6, 2),
        "guardstream": round(value, 2),
        "guardstream_1_thread": round(count / single_s, 2),
        "threads": threads,
        "baseline": round(base, 2),
        "baseline_path": f'Image.open().convert("RGB") + {type(processor).__name__}',
        "ratio": ratio(value, base),
        "ratio_1_thread": ratio(count / single_s, base),
        "target_ratio": 3.0,
        "fidelity": {
            "full_decode_bit_identical": bool(torch.equal(exact, want)),
            "draft_max_abs_diff": round(float((drafted - want).abs().max()), 4),
            "draft_mean_abs_diff": round(float((drafted - want).abs().mean()), 5),
            "note": "normalised pixel units (std ~0.27 per 1/255 step ≈ 0.015)",
        },
        "machine": machine_info(),
    }


def _processor(settings: dict[str, Any]) -> Any:
    """``MllamaImageProcessor`` (transformers uses its PIL backend without torchvision)."""
    from transformers import MllamaImageProcessor

    return MllamaImageProcessor(**settings)
