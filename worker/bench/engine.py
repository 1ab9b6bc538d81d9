"""``guardstream bench engine`` (GPU): the engine on a Llama Guard 3 11B Vision-size model.

Random weights with the full 11B config (``data/mllama_11b_config.json``, reconstructed
from transformers' conversion script: 10.67 B parameters) in bfloat16: random weights
do not change speed. Requests carry distinct images (no cache hits) of 1 tile and of
4 tiles, prepared beforehand for both sides (image preparation is the ``preprocess``
benchmark); the vision cache is off.

- guardstream: ``LlamaGuardClassifier.classify`` in batches of MAX_BATCH_SIZE.
  Safe path: one prefill per prompt (threshold 1.0, nothing decodes). Unsafe path:
  prefill + category decoding of ``--category-tokens`` tokens (threshold 0.0).
- baseline, the model-card loop: one request at a time, processor inputs +
  ``generate()`` producing the real answer's length: 3 tokens for ``\\n\\nsafe<|eot_id|>``,
  6 for ``\\n\\nunsafe\\nS1<|eot_id|>`` (random weights never stop on their own).

Achieved TFLOP/s = FLOPs of one request (counted by ``torch.utils.flop_counter`` on a
guardstream batch) × requests/s, against a bf16 matmul peak measured on the same GPU.
Without CUDA it prints ``{"skipped": reason}``; ``--device cpu --config DIR/config.json``
runs the same code on a small config (a dry run, for tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from worker.bench.machine import machine_info
from worker.bench.report import progress, ratio

NAME = "engine"
HELP = "GPU only: 11B-size random weights, bf16: engine vs model-card loop, TFLOP/s vs peak"
SAFE_ANSWER_TOKENS = 3  # \n\n safe <|eot_id|>
UNSAFE_ANSWER_TOKENS = 6  # \n\n unsafe \n S 1 <|eot_id|>
IMAGE_SIZE_FOR_TILES = {1: (400, 500), 4: (1120, 1120)}  # (width, height) → tiles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=32, help="requests per case (default 32)")
    parser.add_argument(
        "--baseline-requests", type=int, default=8, help="loop requests per case (default 8)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: MAX_BATCH_SIZE")
    parser.add_argument(
        "--category-tokens", type=int, default=4, help="tokens decoded on the unsafe path"
    )
    parser.add_argument("--device", default="cuda", help="default cuda; cpu = dry run")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--config", default=None, help="MllamaConfig JSON (default: the 11B's)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return {
            "benchmark": NAME,
            "skipped": "no CUDA device: torch.cuda.is_available() is False",
            "machine": machine_info(),
        }
    from worker.config import Settings

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    batch_size = args.batch_size or Settings().max_batch_size
    loaded, config_name, parameters = random_model(args.config, device, dtype)
    progress(f"random {config_name}: {parameters / 1e9:.2f} B parameters on {device}")

    peak = _matmul_peak_tflops(device, dtype)
    progress(f"measured {args.dtype} matmul peak: {peak:.1f} TFLOP/s")
    cases: dict[str, Any] = {}
    for tiles in (1, 4):
        requests = _requests(loaded, tiles, args.requests)
        flops = _flops_per_request(loaded, requests[:batch_size], batch_size)
        for path in ("safe", "unsafe"):
            progress(f"{tiles}-tile images, {path} path")
            engine_rps = _time_engine(loaded, requests, batch_size, path, args.category_tokens)
            loop_rps = _time_loop(loaded, requests[: args.baseline_requests], path)
            achieved = flops * engine_rps / 1e12
            cases[f"{tiles}_tile_{path}"] = {
                "guardstream_rps": round(engine_rps, 2),
                "baseline_rps": round(loop_rps, 2),
                "ratio": ratio(engine_rps, loop_rps),
                "tflop_per_request": round(flops / 1e12, 2),
                "achieved_tflops": round(achieved, 1),
                "fraction_of_peak": round(achieved / peak, 3) if peak else None,
            }
    return {
        "benchmark": NAME,
        "unit": "requests/s",
        "model": f"random weights, {config_name}, {args.dtype}",
        "parameters": parameters,
        "batch_size": batch_size,
        "requests_per_case": {"guardstream": args.requests, "baseline": args.baseline_requests},
        "answer_tokens": {
            "baseline_safe": SAFE_ANSWER_TOKENS,
            "baseline_unsafe": UNSAFE_ANSWER_TOKENS,
            "guardstream_unsafe_category_tokens": args.category_tokens,
        },
        "baseline_path": "model-card loop: processor inputs + generate(), one request at a time",
        "matmul_peak_tflops": round(peak, 1),
        "cases": cases,
        "target": {"ratio": 5.0, "fraction_of_peak": 0.6},
        "machine": machine_info(),
    }


def random_model(config_path: str | None, device: Any, dtype: Any) -> tuple[Any, str, int]:
    import torch
    from transformers import (
        AutoTokenizer,
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessor,
        MllamaProcessor,
    )

    from worker.engine.loading import LoadedModel
    from worker.engine.tiny import PREPROCESSOR_SETTINGS, llama32_tokenizer_dir
    from worker.engine.types import ModelInfo
    from worker.prompt.chat_templates import LLAMA_GUARD_3_VISION_TEMPLATE
    from worker.prompt.types import PromptFormat

    if config_path is None:
        text = resources.files("worker.bench").joinpath("data/mllama_11b_config.json").read_text()
        name = "Llama Guard 3 11B Vision config (reconstructed)"
    else:
        with open(config_path, encoding="utf-8") as handle:
            text = handle.read()
        name = config_path
    values = {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    config = MllamaConfig.from_dict(values)
    torch.manual_seed(0)
    with torch.device(device):
        net: Any = MllamaForConditionalGeneration._from_config(config, dtype=dtype)
    net.eval()
    tokenizer = AutoTokenizer.from_pretrained(llama32_tokenizer_dir())
    tokenizer.padding_side = "left"
    processor = MllamaProcessor(
        image_processor=MllamaImageProcessor(**PREPROCESSOR_SETTINGS),
        tokenizer=tokenizer,
        chat_template=LLAMA_GUARD_3_VISION_TEMPLATE,
    )
    info = ModelInfo(
        id="random-mllama",
        revision="random",
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
    )
    loaded = LoadedModel(net, tokenizer, processor, info, PromptFormat.LG3_VISION)
    return loaded, name, sum(p.numel() for p in net.parameters())


def _requests(loaded: Any, tiles: int, count: int) -> list[Any]:
    """``count`` requests with distinct random images of ``tiles`` tiles."""
    import numpy as np
    from PIL import Image

    from schemas.conversation import ConversationEvent
    from worker.engine.types import ClassificationRequest
    from worker.engine.vision_inputs import tiling_spec_from_processor
    from worker.images.preprocess import prepare_image
    from worker.lab import TEXTS, conversation
    from worker.prompt import build_prompts

    spec = tiling_spec_from_processor(loaded.processor)
    width, height = IMAGE_SIZE_FOR_TILES[tiles]
    rng = np.random.default_rng(tiles)
    out = []
    for index in range(count):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        sha = hashlib.sha256(pixels.tobytes()).hexdigest()
        image = prepare_image(Image.fromarray(pixels), spec, sha)
        assert image.num_tiles == tiles, (image.num_tiles, tiles)
        event = ConversationEvent.model_validate(
            conversation(f"e{index}", TEXTS[index % len(TEXTS)], images=[f"s3://bench/{sha}.png"])
        )
        (prompt,) = build_prompts(event, text_model=False)
        out.append(ClassificationRequest(prompt, image))
    return out


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: Any, work: Callable[[], object], repeats: int = 1) -> float:
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    _sync(device)
    return time.perf_counter() - started


def _time_engine(
    loaded: Any, requests: Sequence[Any], batch_size: int, path: str, category_tokens: int
) -> float:
    from worker.engine.scoring import LlamaGuardClassifier

    classifier = LlamaGuardClassifier(
        loaded,
        threshold=1.0 if path == "safe" else 0.0,
        category_max_new_tokens=category_tokens,
        max_batch_size=batch_size,
        vision_cache_size=0,
    )
    device = classifier._device
    classifier.classify(requests[:batch_size])  # warm-up (kernels, allocator)
    seconds = _timed(device, lambda: classifier.classify(requests))
    return len(requests) / seconds


def _time_loop(loaded: Any, requests: Sequence[Any], path: str) -> float:
    import torch

    from worker.engine import token_ids
    from worker.engine.reference import ReferenceClassifier

    reference = ReferenceClassifier(loaded)
    tokens = SAFE_ANSWER_TOKENS if path == "safe" else UNSAFE_ANSWER_TOKENS
    device = torch.device(loaded.info.device)

    def one(request: Any) -> None:
        inputs = reference.inputs(request.prompt.text, request.image)
        with torch.inference_mode():
            loaded.model.generate(
                **inputs,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=token_ids.PAD,
            )

    one(requests[0])  # warm-up

    def all_requests() -> None:
        for request in requests:
            one(request)

    seconds = _timed(device, all_requests)
    return len(requests) / seconds


def _flops_per_request(loaded: Any, requests: Sequence[Any], batch_size: int) -> float:
    """FLOPs of the safe path (prefill incl. vision) per request, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    from worker.engine.scoring import LlamaGuardClassifier

    classifier = LlamaGuardClassifier(
        loaded, threshold=1.0, max_batch_size=batch_size, vision_cache_size=0
    )
    counter = FlopCounterMode(display=False)
    with counter:
        classifier.classify(requests)
    return counter.get_total_flops() / len(requests)


def _matmul_peak_tflops(device: Any, dtype: Any, size: int = 8192, repeats: int = 20) -> float:
    import torch

    if device.type != "cuda":
        size, repeats = 1024, 3
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    _timed(device, lambda: a @ b, 3)
    seconds = _timed(device, lambda: a @ b, repeats)
    return 2 * size**3 * repeats / seconds / 1e12
