"""``guardstream bench repeat``: half the images come back with new text.

N events over N/2 distinct JPEGs: the first half shows each image once; the second
half, produced once the first half has its verdicts (so in-batch deduplication
plays no part), shows them again with new text, so no verdict repeats and only the
vision cache can help. The same events run twice through the Worker on the tiny
vision-heavy model on CPU: VISION_CACHE_SIZE at its default, then 0 (the baseline).
Also reported: encoder runs (cache misses) and the largest score difference between
the two runs (the cache must not change answers).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from worker.bench.machine import machine_info, phase
from worker.bench.report import progress, ratio
from worker.bench.timed import add_model_argument, bench_lab, heavy_model, run_worker
from worker.lab import TEXTS, PhotoMaker, conversation, metric_total

NAME = "repeat"
HELP = "50%% of images repeat with new text: events/s with the vision cache vs without"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20, help="events, even (default 20)")
    add_model_argument(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from worker.pipeline import load_models

    distinct = max(1, args.events // 2)
    model = heavy_model(args.model)
    lab = bench_lab()
    runs: dict[str, Any] = {}
    try:
        progress(f"uploading {distinct} distinct JPEGs")
        uris = lab.put_images(PhotoMaker().photos(distinct), "image/jpeg")
        order = list(range(distinct)) * 2
        events = [
            conversation(f"e{n}", f"{TEXTS[n % len(TEXTS)]} (#{n})", images=[uris[i]])
            for n, i in enumerate(order)
        ]
        half = distinct
        for label, cache_size in (("cache", None), ("nocache", 0)):
            topics = lab.topic_set(label)
            lab.produce_events(events[:half], topic=topics.input, bulk=True)
            fed = [False]

            def feed(done: int, topic: str = topics.input, fed: list[bool] = fed) -> None:
                if done >= half and not fed[0]:
                    fed[0] = True
                    lab.produce_events(events[half:], topic=topic, bulk=True)

            overrides: dict[str, Any] = {"model": model, "device": "cpu", "dtype": "float32"}
            if cache_size is not None:
                overrides["vision_cache_size"] = cache_size
            worker_settings = lab.worker_settings(topics, **overrides)
            progress(f"Worker, VISION_CACHE_SIZE={worker_settings.vision_cache_size}")
            models = load_models(worker_settings)
            with phase() as figures:
                result = run_worker(
                    worker_settings,
                    models,
                    len(events),
                    timeout_s=1800,
                    on_tick=lambda done: progress(f"  {done}/{len(events)} verdicts"),
                    on_progress=feed,
                )
            registry = result.metrics.registry
            verdicts = [json.loads(v) for v in lab.read_values(topics.output, len(events), 30)]
            runs[label] = {
                "events_per_s": result.events_per_s,
                "seconds": result.seconds,
                "cache_size": worker_settings.vision_cache_size,
                "encoder_runs": int(
                    metric_total(registry, "guardstream_cache_misses_total", {"cache": "vision"})
                ),
                "vision_hits": int(
                    metric_total(registry, "guardstream_cache_hits_total", {"cache": "vision"})
                ),
                "scores": {v["event_id"]: v["unsafe_score"] for v in verdicts},
                "phase": figures,
            }
    finally:
        lab.close()
    with_cache, without = runs["cache"], runs["nocache"]
    shared = with_cache["scores"].keys() & without["scores"].keys()
    delta = max(
        (abs(with_cache["scores"][k] - without["scores"][k]) for k in shared), default=float("nan")
    )
    return {
        "benchmark": NAME,
        "unit": "events/s",
        "events": len(events),
        "distinct_images": distinct,
        "model": "tiny vision-heavy (560px tiles, 4 slots, patch 14), CPU fp32",
        "guardstream": round(with_cache["events_per_s"], 3),
        "baseline": round(without["events_per_s"], 3),
        "baseline_path": "the same Worker with VISION_CACHE_SIZE=0",
        "ratio": ratio(with_cache["events_per_s"], without["events_per_s"]),
        "vision_cache_size": with_cache["cache_size"],
        "encoder_runs": {
            "guardstream": with_cache["encoder_runs"],
            "baseline": without["encoder_runs"],
        },
        "vision_cache_hits": with_cache["vision_hits"],
        "verdicts": {"guardstream": len(with_cache["scores"]), "baseline": len(without["scores"])},
        "max_abs_score_diff": delta,
        "seconds": {
            "guardstream": round(with_cache["seconds"], 1),
            "baseline": round(without["seconds"], 1),
        },
        "phases": {"guardstream": with_cache["phase"], "baseline": without["phase"]},
        "machine": machine_info(),
    }
