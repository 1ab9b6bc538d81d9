"""``guardstream bench e2e``: real Kafka + S3 + the tiny vision-heavy model on CPU.

N events, each with one distinct JPEG (a mix of 12 MP photos, full-HD screenshots,
portrait posts and small pictures), waiting in a topic. guardstream: the Worker with
its default settings. Baseline, same run, same events on its own topics: the naive
sequential loop: poll one → fetch from S3 → ``Image.open().convert("RGB")`` →
model-card processor + ``generate(max_new_tokens=20)`` (``ReferenceClassifier``) →
produce → wait for the ack → commit.

Figures: events/s from the first record consumed to the last verdict; latency as
``consume → verdict`` (the verdict's ``latency_ms``; in the loop, poll → ack) and as
completion time from the start (every event is waiting at the start, so this is
what a backlog costs: the loop's waiting happens in Kafka, the worker's partly
inside it, MAX_IN_FLIGHT events at a time).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from typing import Any

from worker.bench.machine import machine_info, phase
from worker.bench.report import latency_summary, progress, ratio
from worker.bench.timed import add_model_argument, bench_lab, heavy_model, run_worker
from worker.lab import (
    IMAGE_SIZES,
    TEXTS,
    Lab,
    PhotoMaker,
    TopicSet,
    conversation,
    metric_total,
)

NAME = "e2e"
HELP = "Kafka + S3 + tiny vision-heavy model on CPU: Worker vs a naive sequential loop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=16, help="events with images (default 16)")
    add_model_argument(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from worker.engine.loading import load_vision_model
    from worker.engine.reference import ReferenceClassifier
    from worker.pipeline import load_models

    model = heavy_model(args.model)
    lab = bench_lab()
    try:
        progress(f"uploading {args.events} distinct JPEGs to S3")
        uris = lab.put_images(PhotoMaker().photos(args.events), "image/jpeg")
        events = [
            conversation(f"e{i}", TEXTS[i % len(TEXTS)], images=[uri]) for i, uri in enumerate(uris)
        ]
        gs_topics = lab.topic_set("gs")
        loop_topics = lab.topic_set("loop")
        lab.produce_events(events, topic=gs_topics.input, bulk=True)
        lab.produce_events(events, topic=loop_topics.input, bulk=True)

        worker_settings = lab.worker_settings(gs_topics, model=model, device="cpu", dtype="float32")
        progress(f"loading {model} twice (worker, reference loop)")
        models = load_models(worker_settings)
        reference = ReferenceClassifier(load_vision_model(model, dtype="float32", device="cpu"))

        progress("naive loop: poll one → fetch → processor + generate(20) → produce → commit")
        with phase() as loop_phase:
            loop = naive_loop(lab, reference, loop_topics, len(events))

        progress("guardstream Worker")
        with phase() as worker_phase:
            result = run_worker(
                worker_settings,
                models,
                len(events),
                timeout_s=1800,
                on_tick=lambda done: progress(f"  {done}/{len(events)} verdicts"),
            )
        verdicts = [json.loads(v) for v in lab.read_values(gs_topics.output, len(events), 30)]
        dead_letters = lab.count_records([gs_topics.dlq])
    finally:
        lab.close()

    service = [v["latency_ms"] / 1000 for v in verdicts]
    completion = [
        max(0.0, _processed_at(v) - result.first_consumed_at) for v in verdicts if _processed_at(v)
    ]
    compared = [v for v in verdicts if v["event_id"] in loop["unsafe"]]
    agree = sum(1 for v in compared if loop["unsafe"][v["event_id"]] == (v["verdict"] == "unsafe"))
    value = result.events_per_s
    base = loop["events_per_s"]
    model_s = metric_total(result.metrics.registry, "guardstream_classify_seconds_sum")
    fetch_s = metric_total(result.metrics.registry, "guardstream_fetch_seconds_sum")
    return {
        "benchmark": NAME,
        "unit": "events/s",
        "events": len(events),
        "image_sizes": [f"{w}x{h}" for w, h in IMAGE_SIZES],
        "model": "tiny vision-heavy (560px tiles, 4 slots, patch 14), CPU fp32",
        "verdicts": len(verdicts),
        "dead_letters": dead_letters,
        "guardstream": round(value, 3),
        "baseline": round(base, 3),
        "baseline_path": "poll one → S3 → Image.open + processor + generate(20) → produce → commit",
        "ratio": ratio(value, base),
        "target_ratio": 5.0,
        "latency_consume_to_verdict": {
            "guardstream": latency_summary(service),
            "baseline": latency_summary(loop["service_s"]),
        },
        "latency_from_start": {
            "guardstream": latency_summary(completion),
            "baseline": latency_summary(loop["completion_s"]),
        },
        "model_busy_fraction": round(model_s / result.seconds, 3) if result.seconds else None,
        "image_prepare_seconds_total": round(fetch_s, 2),
        "verdicts_agree_with_baseline": f"{agree}/{len(compared)}",
        "note": "random weights: the loop's free generate() often does not answer safe/unsafe "
        "first; agreement counts only its answers that do (exactness: tests/engine)",
        "seconds": {"guardstream": round(result.seconds, 1), "baseline": round(loop["seconds"], 1)},
        "phases": {"guardstream": worker_phase, "baseline": loop_phase},
        "machine": machine_info(),
    }


def _processed_at(verdict: dict[str, Any]) -> float:
    from datetime import datetime

    stamp = verdict.get("processed_at")
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


def _model_card_answer(reference: Any, text: str, image: Any) -> str:
    """The model card: processor inputs, ``generate(max_new_tokens=20)``, decoded text.

    (``ReferenceClassifier.classify`` would also parse the answer; a random model's
    category line often does not parse, so only its first word is used here.)
    """
    import torch

    from worker.engine import token_ids

    inputs = reference.inputs(text, image)
    loaded = reference.loaded
    with torch.inference_mode():
        output = loaded.model.generate(
            **inputs, max_new_tokens=20, do_sample=False, pad_token_id=token_ids.PAD
        )
    generated = output[0, inputs["input_ids"].shape[1] :]
    return str(loaded.tokenizer.decode(generated, skip_special_tokens=True))


def naive_loop(lab: Lab, reference: Any, topics: TopicSet, expected: int) -> dict[str, Any]:
    from kafka import KafkaConsumer, KafkaProducer
    from PIL import Image

    from schemas.conversation import ConversationEvent
    from worker.images.uri import parse_s3_uri
    from worker.prompt import build_prompts
    from worker.streaming.kafka_compat import rejoin_if_join_lost

    bootstrap = lab.settings.kafka_bootstrap_servers
    consumer = KafkaConsumer(
        topics.input,
        bootstrap_servers=bootstrap,
        group_id=topics.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    service: list[float] = []
    completion: list[float] = []
    unsafe: dict[str, bool] = {}
    first: float | None = None
    deadline = time.monotonic() + 1800
    try:
        while len(service) < expected and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200, max_records=1)
            rejoin_if_join_lost(consumer)  # the worker's kafka-python workaround (kafka_compat)
            for batch in polled.values():
                for record in batch:
                    started = time.monotonic()
                    first = first or started
                    event = ConversationEvent.model_validate_json(record.value)
                    answers = []
                    for prompt in build_prompts(event, text_model=False):
                        image = None
                        if prompt.image is not None:
                            location = parse_s3_uri(prompt.image.s3_uri)
                            body = lab.s3.get_object(Bucket=location.bucket, Key=location.key)
                            data = body["Body"].read()
                            image = Image.open(io.BytesIO(data)).convert("RGB")
                        answers.append(_model_card_answer(reference, prompt.text, image))
                    verdict: dict[str, Any] = {"event_id": event.event_id, "answers": answers}
                    # The random model often does not start with safe/unsafe: no verdict.
                    words = [a.split()[0] if a.split() else "" for a in answers]
                    if all(word in ("safe", "unsafe") for word in words):
                        verdict["unsafe"] = unsafe[event.event_id] = "unsafe" in words
                    producer.send(topics.output, json.dumps(verdict).encode()).get(timeout=30)
                    consumer.commit()
                    done = time.monotonic()
                    service.append(done - started)
                    completion.append(done - first)
                    if len(service) % 4 == 0:
                        progress(f"  {len(service)}/{expected} (naive loop)")
        finished = time.monotonic()
    finally:
        consumer.close()
        producer.close()
    if len(service) < expected:
        raise TimeoutError(f"the naive loop finished {len(service)} of {expected} events")
    seconds = finished - (first or finished)
    return {
        "seconds": seconds,
        "events_per_s": expected / seconds if seconds else float("nan"),
        "service_s": service,
        "completion_s": completion,
        "unsafe": unsafe,
    }
