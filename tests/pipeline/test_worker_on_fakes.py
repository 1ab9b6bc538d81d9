"""``Worker`` runs on the clients it is given: a fake consumer, producer and S3 client
(``WorkerClients``), no broker. Events in, verdicts and a dead letter out, offsets
committed after the records were acknowledged."""

from __future__ import annotations

import json
from typing import Any

from doubles import StubClassifier, stub_models
from images.image_builders import FakeS3, encode, noise_rgb
from kafka import TopicPartition
from streaming.stream_fakes import FakeConsumer, FakeProducer, FakeRecord

from schemas.dead_letter import DeadLetterHeaders
from worker.clients import WorkerClients
from worker.config import Settings
from worker.lab import conversation, encode_event
from worker.metrics import Metrics
from worker.pipeline import Worker

TP = TopicPartition("in", 0)
PNG = encode(noise_rgb(40, 30), "PNG")


class LaggingConsumer(FakeConsumer):
    """What the worker's gauges read besides the loop's calls."""

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def position(self, tp: TopicPartition, timeout_ms: int = 0) -> int | None:
        return None


def test_worker_runs_on_fake_clients() -> None:
    values = [
        encode_event(conversation("text-0", "hello")),
        encode_event(conversation("image-1", "look", images=["s3://bucket/a.png"])),
        b"not json",
        encode_event(conversation("text-3", "bye")),
    ]
    consumer = LaggingConsumer([TP])
    consumer.script = [[FakeRecord("in", 0, offset, v) for offset, v in enumerate(values)]]
    producer = FakeProducer(auto_ack=True)
    s3 = FakeS3(PNG)
    classifier = StubClassifier()
    settings = Settings(input_topic="in", metrics_port=0, commit_interval_ms=0)
    metrics = Metrics()
    worker = Worker(
        settings,
        stub_models(classifier),
        WorkerClients(consumer=consumer, producer=producer, s3=s3),
        metrics=metrics,
    )

    def all_committed() -> bool:
        return bool(consumer.commits) and consumer.commits[-1] == {("in", 0): len(values)}

    worker.run(until=all_committed, handle_signals=False)

    assert all_committed()
    sent: dict[str, list[dict[str, Any]]] = {}
    for topic, kwargs, future in producer.sent:
        assert future.is_done
        sent.setdefault(topic, []).append(kwargs)
    verdicts = [json.loads(kwargs["value"]) for kwargs in sent[settings.output_topic]]
    assert sorted(v["event_id"] for v in verdicts) == ["image-1", "text-0", "text-3"]
    assert all(v["verdict"] == "safe" for v in verdicts)
    [image_verdict] = [v for v in verdicts if v["event_id"] == "image-1"]
    assert [i["s3_uri"] for i in image_verdict["images"]] == ["s3://bucket/a.png"]
    [dead] = sent[settings.dlq_topic]
    assert dead["value"] == b"not json"
    headers = DeadLetterHeaders.from_kafka_headers(list(dead["headers"]))
    assert (headers.stage.value, headers.original_offset) == ("decode", 2)
    assert s3.calls == [("bucket", "a.png")]
    assert sum(len(call) for call in classifier.calls) == 3  # one request per prompt
    assert metrics.registry.get_sample_value("guardstream_fetched_bytes_total") == len(PNG)
    assert consumer.closed_with == {"autocommit": False}
