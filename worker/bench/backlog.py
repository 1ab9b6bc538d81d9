"""``guardstream bench backlog``: RSS and throughput with a large backlog waiting.

N text-only events (100 000 by default) are produced first; then the Worker, with an
instant classifier, works through all of them while RSS is sampled every 0.5 s.
Bounded in-flight work (MAX_IN_FLIGHT, two pending batches, MessageRejected pausing
the partitions) must keep RSS flat however long the backlog: the figures compare
RSS early in the run with RSS at its end.
"""

from __future__ import annotations

import argparse
from typing import Any

from worker.bench.instant import instant_models
from worker.bench.machine import RssSampler, machine_info, rss_bytes
from worker.bench.overhead import text_events
from worker.bench.report import progress
from worker.bench.timed import bench_lab, run_worker

NAME = "backlog"
HELP = "RSS over time and events/s while the Worker drains a large backlog"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=int, default=100_000, help="events waiting (default 100000)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    lab = bench_lab()
    try:
        topics = lab.topic_set("backlog")
        progress(f"producing {args.events} events to {topics.input}")
        produced = len(lab.produce_events(text_events(args.events), topic=topics.input, bulk=True))
        worker_settings = lab.worker_settings(topics)
        models = instant_models()
        rss_before = rss_bytes()
        progress(f"Worker draining {produced} events (instant classifier)")
        with RssSampler(0.5) as sampler:
            result = run_worker(
                worker_settings,
                models,
                produced,
                timeout_s=1800,
                on_tick=lambda done: progress(
                    f"  {done}/{produced}  rss {rss_bytes() / 2**20:.0f} MB"
                ),
            )
        outputs = lab.count_records([topics.output, topics.dlq])
    finally:
        lab.close()
    samples = [rss for _, rss in sampler.samples]
    mb = 2**20
    tenth = max(1, len(samples) // 10)
    early, late = samples[:tenth], samples[-tenth:]
    return {
        "benchmark": NAME,
        "unit": "events/s",
        "events": produced,
        "outputs": outputs,
        "guardstream": round(result.events_per_s, 1),
        "seconds": round(result.seconds, 1),
        "rss_mb": {
            "before_worker": round(rss_before / mb, 1),
            "min": round(min(samples) / mb, 1),
            "max": round(max(samples) / mb, 1),
            "first_10pct_max": round(max(early) / mb, 1),
            "last_10pct_max": round(max(late) / mb, 1),
            "samples": len(samples),
        },
        "baseline": "RSS in the first tenth of the run",
        "ratio": round(max(late) / max(early), 3),
        "ratio_meaning": "RSS at the end / RSS early on (1.0 = flat)",
        "settings": {
            name: getattr(worker_settings, name)
            for name in ("max_in_flight", "max_batch_size", "max_poll_records", "fetch_concurrency")
        },
        "machine": machine_info(),
    }
