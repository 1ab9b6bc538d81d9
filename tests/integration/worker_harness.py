"""Run a real Worker against the real broker and S3 server, and collect what it wrote."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from PIL import Image

from schemas.dead_letter import DeadLetterHeaders
from schemas.verdict import VerdictEvent
from worker.clients import connect
from worker.config import Settings
from worker.engine.models import Models
from worker.pipeline import Worker


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """Incompressible: its size grows with its pixels."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def conversation(
    event_id: str, *, images: tuple[str, ...] = (), text: str = "hello", **extra: Any
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image", "s3_uri": uri} for uri in images]
    content.append({"type": "text", "text": text})
    return {
        "event_id": event_id,
        "conversation_id": f"conv-{event_id}",
        "created_at": "2026-11-24T09:00:00Z",
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


@dataclass
class Outputs:
    verdicts: dict[str, list[VerdictEvent]] = field(default_factory=dict)
    dead_letters: dict[str, list[tuple[DeadLetterHeaders, Any]]] = field(default_factory=dict)
    """Keyed by the original offset "partition:offset"; value = (headers, record)."""

    def accounted(self) -> int:
        return len(self.verdicts) + len(self.dead_letters)


@dataclass
class Lab:
    """One test's private topics and bucket on the real services."""

    bootstrap: str
    s3: Any
    name: str
    partitions: int = 1

    @property
    def input_topic(self) -> str:
        return f"{self.name}.in"

    @property
    def output_topic(self) -> str:
        return f"{self.name}.out"

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}.dlq"

    @property
    def bucket(self) -> str:
        return self.name

    def create(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics(
                [
                    NewTopic(t, self.partitions, 1)
                    for t in (self.input_topic, self.output_topic, self.dlq_topic)
                ]
            )
        finally:
            admin.close()
        self.s3.create_bucket(Bucket=self.bucket)

    def put_image(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def produce(self, values: list[bytes | None], keys: list[bytes | None] | None = None) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for index, value in enumerate(values):
                key = keys[index] if keys else f"k{index}".encode()
                producer.send(self.input_topic, value=value, key=key, headers=[("trace", b"t-1")])
            producer.flush()
        finally:
            producer.close()

    def produce_events(self, events: list[dict[str, Any]]) -> None:
        self.produce(
            [json.dumps(e).encode() for e in events],
            [e["conversation_id"].encode() for e in events],
        )

    def settings(self, model_path: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": self.bootstrap,
            "input_topic": self.input_topic,
            "output_topic": self.output_topic,
            "dlq_topic": self.dlq_topic,
            "group_id": f"{self.name}-group",
            "model": model_path,
            "device": "cpu",
            "dtype": "float32",
            "max_batch_wait_ms": 5,
            "commit_interval_ms": 200,
            "metrics_port": 0,
            "worker_id": f"test-{uuid.uuid4().hex[:6]}",
            "fetch_max_attempts": 3,
            "fetch_max_seconds": 10.0,
            "session_timeout_ms": 10_000,
            "s3_endpoint_url": os.environ["GUARDSTREAM_S3_ENDPOINT_URL"],
        }
        values.update(overrides)
        return Settings(**values)

    def read_outputs(
        self, expected: int, timeout_s: float = 60.0, *, isolation_level: str = "read_uncommitted"
    ) -> Outputs:
        """Read the output and DLQ topics from the beginning until ``expected`` inputs are accounted for."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level=isolation_level,
            group_id=None,
        )
        tps = [
            TopicPartition(topic, p)
            for topic in (self.output_topic, self.dlq_topic)
            for p in range(self.partitions)
        ]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        outputs = Outputs()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and outputs.accounted() < expected:
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        if tp.topic == self.output_topic:
                            verdict = VerdictEvent.model_validate_json(record.value)
                            outputs.verdicts.setdefault(verdict.event_id, []).append(verdict)
                        else:
                            headers = DeadLetterHeaders.from_kafka_headers(list(record.headers))
                            where = f"{headers.original_partition}:{headers.original_offset}"
                            outputs.dead_letters.setdefault(where, []).append((headers, record))
        finally:
            consumer.close()
        return outputs


@contextmanager
def running_worker(settings: Settings, models: Models, **kwargs: Any) -> Iterator[Worker]:
    """A Worker consuming in a background thread; stopped (drained) on exit."""
    clients = connect(settings, s3_client=kwargs.pop("s3_client", None))
    worker = Worker(settings, models, clients, **kwargs)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(handle_signals=False)
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=60)
        if errors:
            raise errors[0]


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
