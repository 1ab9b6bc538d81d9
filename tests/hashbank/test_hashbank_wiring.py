"""The banks in the worker's path, on fakes (no broker): the fetch stage hashes and looks
up, a ``block`` match skips the model (its calls are counted), ``classify_too`` still
classifies, the decision blocks naming the bank, the worker consumes only once the bank
is caught up, and with no bank topic nothing is hashed. The real broker:
tests/integration/test_hashbank_worker.py."""

from __future__ import annotations

import json
import threading
from typing import Any

from doubles import StubClassifier, scored, stub_models
from hashbank_helpers import TOPIC, FakeBankConsumer, md5_entry, pdq_entry
from images.image_builders import FakeBody, encode, photo_like
from kafka import TopicPartition
from streaming.stream_fakes import FakeConsumer, FakeProducer, FakeRecord

from worker.clients import WorkerClients
from worker.config import Settings
from worker.hashbank import entry_record, hash_image, md5_hex
from worker.lab import conversation, encode_event
from worker.metrics import Metrics
from worker.pipeline import Worker

TP = TopicPartition("in", 0)
KNOWN = encode(photo_like(320, 240, seed=1), "JPEG", quality=90)
KNOWN_RECOMPRESSED = encode(photo_like(320, 240, seed=1).resize((160, 120)), "JPEG", quality=60)
EXACT = encode(photo_like(200, 200, seed=2), "PNG")
OTHER = encode(photo_like(320, 240, seed=3), "JPEG", quality=90)


class KeyedS3:
    """get_object serving a dict of key → bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: list[str] = []

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(Key)
        data = self.objects[Key]
        return {"Body": FakeBody(data), "ContentLength": len(data)}


class CaughtUpConsumer(FakeConsumer):
    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def position(self, tp: TopicPartition, timeout_ms: int = 0) -> int | None:
        return None


def pdq_of(data: bytes) -> str:
    from worker.images.decode import ImageLimits, decode_image

    return hash_image(decode_image(data, ImageLimits()), data).pdq


def bank_consumer() -> FakeBankConsumer:
    consumer = FakeBankConsumer(partitions=1)
    for entry in (pdq_entry(pdq_of(KNOWN), bank="takedowns"), md5_entry(md5_hex(EXACT))):
        consumer.append(0, *entry_record(entry))
    return consumer


def run_worker(
    events: list[bytes], *, classifier: StubClassifier, **settings: Any
) -> tuple[list[dict[str, Any]], Metrics]:
    consumer = CaughtUpConsumer([TP])
    consumer.script = [[FakeRecord("in", 0, offset, v) for offset, v in enumerate(events)]]
    producer = FakeProducer(auto_ack=True)
    s3 = KeyedS3({"known.jpg": KNOWN_RECOMPRESSED, "exact.png": EXACT, "other.jpg": OTHER})
    config = Settings(
        input_topic="in", metrics_port=0, commit_interval_ms=0, hash_bank_topic=TOPIC, **settings
    )
    metrics = Metrics()
    worker = Worker(
        config,
        stub_models(classifier),
        WorkerClients(consumer=consumer, producer=producer, s3=s3, bank_consumer=bank_consumer()),
        metrics=metrics,
    )

    def all_committed() -> bool:
        return bool(consumer.commits) and consumer.commits[-1] == {("in", 0): len(events)}

    worker.run(until=all_committed, handle_signals=False)
    assert all_committed()
    verdicts = [
        json.loads(kwargs["value"])
        for topic, kwargs, _ in producer.sent
        if topic == config.output_topic
    ]
    return sorted(verdicts, key=lambda v: v["event_id"]), metrics


EVENTS = [
    encode_event(conversation("a-known", "look", images=["s3://bucket/known.jpg"])),
    encode_event(conversation("b-exact", "look", images=["s3://bucket/exact.png"])),
    encode_event(conversation("c-other", "look", images=["s3://bucket/other.jpg"])),
    encode_event(
        conversation("d-mixed", "look", images=["s3://bucket/other.jpg", "s3://bucket/known.jpg"])
    ),
    encode_event(conversation("e-text", "hello")),
]


def test_a_matched_image_skips_the_model_and_blocks_naming_the_bank() -> None:
    classifier = StubClassifier()
    verdicts, metrics = run_worker(EVENTS, classifier=classifier)
    known, exact, other, mixed, text = verdicts

    # The model saw other.jpg twice and the text once; never a matched image.
    seen = [r.image.hashes.md5 if r.image else None for call in classifier.calls for r in call]
    assert sorted(seen, key=str) == sorted([md5_hex(OTHER)] * 2 + [None], key=str)

    [image] = known["images"]
    assert (known["verdict"], known["unsafe_score"], known["categories"]) == ("unsafe", 1.0, ["S4"])
    assert image["hash_match"]["bank"] == "takedowns"
    assert image["hash_match"]["signal"] == "pdq"
    assert 0 < image["hash_match"]["distance"] <= 31  # half size, JPEG q60: not identical
    assert image["md5"] == md5_hex(KNOWN_RECOMPRESSED)
    assert image["pdq"] == pdq_of(KNOWN_RECOMPRESSED)
    assert (known["action"], known["reasons"]) == ("block", ["hash_match:takedowns"])

    [image] = exact["images"]
    assert image["hash_match"] == {
        "bank": "exact",
        "label": "case-2",
        "distance": 0,
        "signal": "md5",
    }
    assert exact["categories"] == ["S1", "S12"]
    assert (exact["action"], exact["reasons"]) == ("block", ["hash_match:exact"])

    assert other["verdict"] == "safe" and other["action"] == "allow"
    assert other["images"][0]["hash_match"] is None
    assert other["images"][0]["md5"] == md5_hex(OTHER)

    # One matched image of two: the other went to the model, the match decides.
    assert [i["hash_match"] is not None for i in mixed["images"]] == [False, True]
    assert (mixed["verdict"], mixed["action"]) == ("unsafe", "block")
    assert mixed["images"][0]["verdict"] == "safe"

    assert text["images"] == [] and text["action"] == "allow"

    sample = metrics.registry.get_sample_value
    assert sample("guardstream_hash_matches_total", {"bank": "takedowns", "signal": "pdq"}) == 2
    assert sample("guardstream_hash_matches_total", {"bank": "exact", "signal": "md5"}) == 1
    assert sample("guardstream_hash_bank_entries", {"bank": "takedowns"}) == 1
    assert sample("guardstream_hash_lookup_seconds_count") == 5  # one per image fetched
    assert sample("guardstream_hash_bank_caught_up") == 1


def test_classify_too_still_classifies_but_the_match_decides() -> None:
    classifier = StubClassifier(scored(0.2, ("S2",)))
    verdicts, _ = run_worker(EVENTS[:1], classifier=classifier, hash_match_action="classify_too")
    [known] = verdicts
    assert sum(len(call) for call in classifier.calls) == 1
    assert (known["verdict"], known["unsafe_score"], known["action"]) == ("unsafe", 1.0, "block")
    assert known["categories"] == ["S2", "S4"]  # the model's added to the bank's
    assert known["images"][0]["hash_match"]["bank"] == "takedowns"


def test_the_worker_consumes_only_once_the_bank_is_caught_up() -> None:
    consumer = CaughtUpConsumer([TP])
    consumer.script = [[FakeRecord("in", 0, 0, EVENTS[0])]]
    missing_topic = FakeBankConsumer(partitions=1, exists=False)
    worker = Worker(
        Settings(input_topic="in", metrics_port=0, hash_bank_topic=TOPIC),
        stub_models(),
        WorkerClients(
            consumer=consumer,
            producer=FakeProducer(auto_ack=True),
            s3=None,
            bank_consumer=missing_topic,
        ),
    )
    turns = iter(range(10))
    stopped = threading.Event()

    def until() -> bool:
        done = next(turns, None) is None
        if done:
            stopped.set()
        return done

    worker.run(until=until, handle_signals=False)
    assert stopped.is_set()
    assert consumer.commits == [] and worker.health.ready() == (False, "hash bank not caught up")
    assert missing_topic.closed


def test_without_a_bank_topic_nothing_is_hashed() -> None:
    worker = Worker(
        Settings(input_topic="in", metrics_port=0),
        stub_models(),
        WorkerClients(consumer=CaughtUpConsumer([TP]), producer=FakeProducer(), s3=None),
    )
    assert worker.bank is None and worker.health.hash_bank_ready is None


def test_a_bank_topic_without_a_bank_consumer_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="bank consumer"):
        Worker(
            Settings(input_topic="in", metrics_port=0, hash_bank_topic=TOPIC),
            stub_models(),
            WorkerClients(consumer=CaughtUpConsumer([TP]), producer=FakeProducer(), s3=None),
        )
