"""``guardstream bench categories``: what the per-category step costs per batch.

The same requests run through ``LlamaGuardClassifier`` with the step (guardstream:
prefill, then ``unsafe \\n S`` teacher-forced for every row) and without it
(baseline: ``score_categories=False``, today's prefill only), alternating, in one
process. Threshold 1.0, so no row decodes categories in either: the difference is the
step alone. Also timed directly: the step's own calls, against the rest of the batch
(prefill incl. the vision encoder). Cases: rows with an image of 1120×1120 pixels (4
tiles of 560), text-only rows.

Default model: the tiny vision-heavy model (real 560×560 tiles, patch 14) on CPU,
where the vision encoder dominates a batch; ``--model`` takes any Llama Guard 3
Vision directory; ``--config 11b --device cuda --dtype bfloat16`` builds random
weights of the 11B's size on a GPU, as ``bench engine`` does (random weights do not
change speed).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from worker.bench.machine import machine_info
from worker.bench.report import progress, ratio
from worker.lab import TEXTS, cached_tiny_model

NAME = "categories"
HELP = "per-category step on vs off: added time per batch vs the prefill"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=16, help="requests per case (default 16)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per batch (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (default 3)")
    parser.add_argument(
        "--model", default=None, help="model directory (default: the tiny vision-heavy model)"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="random weights from this MllamaConfig JSON instead of --model ('11b': the 11B's)",
    )
    parser.add_argument("--device", default="cpu", help="default cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from worker.engine.loading import load_vision_model

    torch.manual_seed(0)
    if args.config is not None:
        from worker.bench.engine import random_model

        config = None if args.config == "11b" else args.config
        loaded, model, _ = random_model(
            config, torch.device(args.device), getattr(torch, args.dtype)
        )
    else:
        model = args.model or str(cached_tiny_model(vision_heavy=True))
        loaded = load_vision_model(model, dtype=args.dtype, device=args.device)
    batches = -(-args.requests // args.batch_size)
    cases: dict[str, Any] = {}
    for case, with_images in (("image_rows", True), ("text_only_rows", False)):
        progress(f"{case}: {args.requests} requests, {args.repeats} runs per side")
        requests = _requests(loaded, args.requests, with_images)
        on, off, step, total = _measure(loaded, requests, args.batch_size, args.repeats)
        cases[case] = {
            "tiles_per_image": requests[0].image.num_tiles if with_images else 0,
            "guardstream_rps": round(args.requests / on, 3),
            "baseline_rps": round(args.requests / off, 3),
            "ratio": ratio(off, on),
            "batch_ms_with_step": round(on / batches * 1000, 2),
            "batch_ms_without_step": round(off / batches * 1000, 2),
            "step_ms_per_batch": round(step / batches * 1000, 2),
            "step_fraction_of_rest_of_batch": round(step / (total - step), 4),
        }
    return {
        "benchmark": NAME,
        "unit": "requests/s",
        "model": model,
        "device": args.device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "batches_per_run": batches,
        "baseline_path": "same classifier, score_categories=False (prefill only)",
        "cases": cases,
        "machine": machine_info(),
    }


def _requests(loaded: Any, count: int, with_images: bool) -> list[Any]:
    """``count`` requests, each with a distinct random 1120×1120 image (or none)."""
    import numpy as np
    from PIL import Image

    from schemas.conversation import ConversationEvent
    from worker.engine.types import ClassificationRequest
    from worker.engine.vision_inputs import tiling_spec_from_processor
    from worker.images.preprocess import prepare_image
    from worker.lab import conversation
    from worker.prompt import build_prompts

    spec = tiling_spec_from_processor(loaded.processor)
    rng = np.random.default_rng(4)
    out = []
    for index in range(count):
        image, uris = None, []
        if with_images:
            pixels = rng.integers(0, 256, (1120, 1120, 3), dtype=np.uint8)
            sha = hashlib.sha256(pixels.tobytes()).hexdigest()
            image = prepare_image(Image.fromarray(pixels), spec, sha)
            uris = [f"s3://bench/{sha}.png"]
        event = ConversationEvent.model_validate(
            conversation(f"e{index}", TEXTS[index % len(TEXTS)], images=uris)
        )
        (prompt,) = build_prompts(event, text_model=False)
        out.append(ClassificationRequest(prompt, image))
    return out


def _measure(
    loaded: Any, requests: Sequence[Any], batch_size: int, repeats: int
) -> tuple[float, float, float, float]:
    """(best seconds with the step, best without, the step's own seconds and that run's
    total): the sides alternate so load on the machine hits both alike."""
    from worker.engine.scoring import LlamaGuardClassifier

    def classifier(score_categories: bool) -> LlamaGuardClassifier:
        return LlamaGuardClassifier(
            loaded, threshold=1.0, max_batch_size=batch_size, score_categories=score_categories
        )

    on, off = classifier(True), classifier(False)
    step_seconds = _time_calls(on, "_category_logits", loaded.info.device)
    for side in (on, off):
        side.classify(requests[:batch_size])  # warm-up (allocator, kernels)
    best_on = best_off = best_step = best_total = float("inf")
    for _ in range(repeats):
        step_seconds.clear()
        seconds_on = _timed(loaded.info.device, lambda: on.classify(requests))
        if seconds_on < best_on:
            best_on, best_step, best_total = seconds_on, sum(step_seconds), seconds_on
        best_off = min(best_off, _timed(loaded.info.device, lambda: off.classify(requests)))
    return best_on, best_off, best_step, best_total


def _time_calls(target: Any, method: str, device: str) -> list[float]:
    """Wrap ``target.method`` so each call's wall time lands in the returned list."""
    original: Callable[..., Any] = getattr(target, method)
    seconds: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        _sync(device)
        started = time.perf_counter()
        result = original(*args, **kwargs)
        _sync(device)
        seconds.append(time.perf_counter() - started)
        return result

    setattr(target, method, timed)
    return seconds


def _timed(device: str, work: Callable[[], object]) -> float:
    _sync(device)
    started = time.perf_counter()
    work()
    _sync(device)
    return time.perf_counter() - started


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
