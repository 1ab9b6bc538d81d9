"""``guardstream bench overhead``: the framework's cost with an instant classifier.

Text-only events (no S3). guardstream: the full Worker (decode, validate, prompt
rendering, fetch step, batching, verdict building, produce, commit) with a classifier
that answers at once. Baseline: the raw kafka-python loop on the same input topic
with the worker's client settings: poll → send each record → flush → commit about
once a second (the worker's COMMIT_INTERVAL_MS), at-least-once like the worker.
Both are timed from their first consumed record to their last acknowledged output.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

from worker.bench.instant import instant_models
from worker.bench.machine import machine_info, phase
from worker.bench.report import progress, ratio
from worker.bench.timed import bench_lab, run_worker
from worker.lab import TEXTS, conversation

NAME = "overhead"
HELP = (
    "events/s through the full Worker with an instant classifier vs its Kafka client's "
    "raw echo loop (--driver kafka-python|confluent|both)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20_000, help="events (default 20000)")
    parser.add_argument(
        "--driver",
        choices=("kafka-python", "confluent", "both"),
        default="kafka-python",
        help="KAFKA_DRIVER of the guardstream run(s), each against its own client's raw "
        "echo loop; 'both' runs both drivers and both echo loops on the same input "
        "(ratio: confluent)",
    )
    parser.add_argument(
        "--peer",
        choices=("none", "quix"),
        default="none",
        help="also run a same-run peer: 'quix' = a minimal Quix Streams application doing "
        "the same per-event work (validate, verdict JSON, produce, commit), in its own "
        "virtual environment made on first use (needs the package index once)",
    )


def text_events(count: int, prefix: str = "e") -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield conversation(f"{prefix}{index}", TEXTS[index % len(TEXTS)])


def raw_loop(settings: Any, input_topic: str, output_topic: str, expected: int) -> float:
    """Seconds from the first record polled to the last output acknowledged."""
    from kafka import KafkaConsumer, KafkaProducer

    from worker.clients import kafka_connection
    from worker.streaming.kafka_compat import rejoin_if_join_lost
    from worker.streaming.kafka_config import consumer_kwargs, producer_kwargs

    conn = kafka_connection(settings)
    consumer = KafkaConsumer(
        **consumer_kwargs(
            conn,
            group_id=f"{input_topic}-raw",
            max_poll_records=settings.max_poll_records,
            session_timeout_ms=10_000,
        )
    )
    producer = KafkaProducer(**producer_kwargs(conn))
    consumer.subscribe([input_topic])
    interval = settings.commit_interval_ms / 1000
    done = 0
    first: float | None = None
    last_commit = time.monotonic()
    deadline = time.monotonic() + 600
    try:
        while done < expected and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=100)
            # Without it this loop hung, 1 run in ~10, on the group join that races the
            # just-created topic (kafka-python 3.0.12; see kafka_compat). A few attribute
            # reads per poll: no per-record work.
            rejoin_if_join_lost(consumer)
            for records in batch.values():
                if first is None:
                    first = time.monotonic()
                for record in records:
                    producer.send(output_topic, key=record.key, value=record.value)
                    done += 1
            if batch:
                producer.flush()
                if time.monotonic() - last_commit >= interval or done >= expected:
                    consumer.commit()
                    last_commit = time.monotonic()
        finished = time.monotonic()
    finally:
        consumer.close()
        producer.close()
    if done < expected:
        raise TimeoutError(f"the raw loop saw {done} of {expected} records")
    return finished - (first or finished)


RAW_PATHS = {
    "kafka-python": "kafka-python poll → send → flush, commit ~1/s",
    "confluent": "confluent-kafka consume → produce → flush, commit ~1/s",
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    drivers = ["kafka-python", "confluent"] if args.driver == "both" else [args.driver]
    lab = bench_lab()
    settings = lab.settings
    rows: dict[str, dict[str, Any]] = {}
    phases: dict[str, Any] = {}
    try:
        topics = lab.topic_set("overhead")
        progress(f"producing {args.events} text-only events to {topics.input}")
        produced = len(lab.produce_events(text_events(args.events), topic=topics.input, bulk=True))
        for driver in drivers:
            raw_output = f"{lab.name}-raw-{driver}.out"
            lab.create_topics([raw_output])
            progress(f"raw {driver} consume → produce loop")
            loop = raw_loop if driver == "kafka-python" else _confluent_echo
            with phase() as raw_phase:
                raw_s = loop(settings, topics.input, raw_output, produced)
            rows[f"raw {driver} echo"] = {
                "events_per_s": round(produced / raw_s, 1) if raw_s > 0 else None,
                "outputs": lab.count_records([raw_output]),
                "path": RAW_PATHS[driver],
            }
            phases[f"raw {driver}"] = raw_phase

        worker_settings = lab.worker_settings(topics)
        for driver in drivers:
            # Each run its own group and outputs: both consume the whole input.
            out = (f"{topics.output}-{driver}", f"{topics.dlq}-{driver}")
            lab.create_topics(out)
            worker_settings = lab.worker_settings(
                topics,
                output_topic=out[0],
                dlq_topic=out[1],
                group_id=f"{topics.group}-{driver}",
                kafka_driver=driver,
            )
            progress(f"guardstream Worker ({driver}) with an instant classifier")
            with phase() as worker_phase:
                result = run_worker(
                    worker_settings,
                    instant_models(),
                    produced,
                    timeout_s=600,
                    on_tick=lambda done: progress(f"  {done}/{produced}"),
                )
            rows[f"guardstream {driver}"] = {
                "events_per_s": round(result.events_per_s, 1),
                "verdicts": lab.count_records([out[0]]),
                "dead_letters": lab.count_records([out[1]]),
            }
            phases[f"guardstream {driver}"] = worker_phase
        if args.peer == "quix":
            quix_out = f"{lab.name}-quix.out"
            lab.create_topics([quix_out])
            progress("Quix Streams peer application")
            with phase() as quix_phase:
                quix = quix_peer(settings, topics.input, quix_out, f"{topics.group}-quix", produced)
            rows["quix streams app"] = {
                "events_per_s": round(produced / quix["seconds"], 1) if quix["seconds"] else None,
                "outputs": lab.count_records([quix_out]),
                "quixstreams": quix["quixstreams"],
                "path": "quixstreams: validate ConversationEvent → VerdictEvent JSON → "
                "to_topic, at-least-once commit every 1 s",
            }
            phases["quix"] = quix_phase
    finally:
        lab.close()
    main = drivers[-1]
    value = rows[f"guardstream {main}"]["events_per_s"]
    base = rows[f"raw {main} echo"]["events_per_s"] or float("nan")
    peer: dict[str, Any] = {}
    if "quix streams app" in rows:
        quix_rate = rows["quix streams app"]["events_per_s"] or float("nan")
        peer = {"peer": quix_rate, "peer_ratio": ratio(value, quix_rate), "target_peer_ratio": 1.0}
    return {
        "benchmark": NAME,
        "unit": "events/s",
        "events": produced,
        "driver": main,
        "verdicts": rows[f"guardstream {main}"]["verdicts"],
        "dead_letters": rows[f"guardstream {main}"]["dead_letters"],
        "baseline_outputs": rows[f"raw {main} echo"]["outputs"],
        "guardstream": value,
        "baseline": base,
        "baseline_path": RAW_PATHS[main],
        "ratio": ratio(value, base),
        "target_ratio": 0.7,
        **peer,
        "rows": rows,
        "phases": phases,
        "settings": _batching(worker_settings),
        "machine": machine_info(),
    }


def _confluent_echo(settings: Any, input_topic: str, output_topic: str, expected: int) -> float:
    from worker.bench.confluent_echo import confluent_echo

    return confluent_echo(settings, input_topic, output_topic, expected)


def quix_peer(settings: Any, input_topic: str, output_topic: str, group: str, events: int) -> Any:
    """Runs ``quix_app.py`` in the peer's own environment; its JSON line back."""
    import json
    import subprocess
    from pathlib import Path

    from worker.bench.quix_env import quix_python

    app = Path(__file__).with_name("quix_app.py")
    done = subprocess.run(
        [
            str(quix_python(progress)),
            str(app),
            f"--broker={settings.kafka_bootstrap_servers}",
            f"--input={input_topic}",
            f"--output={output_topic}",
            f"--group={group}",
            f"--events={events}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _batching(settings: Any) -> dict[str, Any]:
    return {
        name: getattr(settings, name)
        for name in (
            "max_batch_size",
            "max_batch_wait_ms",
            "max_batch_tiles",
            "max_in_flight",
            "max_poll_records",
            "commit_interval_ms",
        )
    }
