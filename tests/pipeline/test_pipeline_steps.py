"""``worker.pipeline.build_steps`` end to end on fakes: decode → fetch → classify →
records → produce → commit, without a broker."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import torch

from schemas.conversation import ImageContent
from worker.bench.instant import InstantClassifier
from worker.config import Settings
from worker.engine.models import Models
from worker.images.types import PreparedImage, TilingSpec
from worker.metrics import Metrics
from worker.pipeline import build_steps
from worker.streaming import Message, MessageRejected, OffsetTracker, Partition
from worker.streaming.steps import CommitOffsets, Produce


class Acked:
    is_done = True
    exception = None

    def failed(self) -> bool:
        return False


class FakeProducer:
    """Acks every record at once; keeps (topic, kwargs) of each."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, **kwargs: Any) -> Acked:
        self.sent.append((topic, kwargs))
        return Acked()

    def flush(self, timeout: float | None = None) -> None:
        pass


P = Partition("in", 0)


def event(index: int, images: int) -> bytes:
    content: list[dict[str, Any]] = [
        {"type": "image", "s3_uri": f"s3://bucket/{index}-{i}.png"} for i in range(images)
    ]
    content.append({"type": "text", "text": f"hello {index}"})
    return json.dumps(
        {
            "event_id": f"e{index}",
            "conversation_id": f"c{index}",
            "created_at": "2026-11-24T09:00:00Z",
            "messages": [{"role": "user", "content": content}],
        }
    ).encode()


class SlowImages:
    """prepare_image on the fetch threads: records the thread, takes a while."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self, item: ImageContent) -> PreparedImage:
        self.threads.append(threading.current_thread().name)
        time.sleep(0.02)
        return PreparedImage(item.s3_uri, torch.zeros(1, 3, 2, 2), aspect_ratio_id=1, num_tiles=1)


def run_chain(values: list[bytes | None], images: SlowImages) -> tuple[list[Any], list[Any]]:
    settings = Settings(max_in_flight=4, max_batch_size=2, max_batch_wait_ms=0)
    tracker = OffsetTracker()
    commits: list[dict[Partition, int]] = []
    producer = FakeProducer()
    wakeup = threading.Event()
    step = build_steps(
        settings,
        Models(vision=InstantClassifier(), tiling=TilingSpec()),
        images,
        Produce(producer, CommitOffsets(tracker, commits.append, commit_interval_s=0)),
        Metrics(),
        wakeup=wakeup,
    )
    for offset, value in enumerate(values):
        tracker.track(P, offset)
        message = Message(payload=value, partition=P, offset=offset, timestamp=0, value=value)
        while True:
            try:
                step.submit(message)
                break
            except MessageRejected:  # what the consumer loop does: wait, poll, retry
                wakeup.wait(0.05)
                wakeup.clear()
                step.poll()
    step.close()
    step.join(10)
    return producer.sent, commits


def test_text_only_events_skip_the_fetch_threads_and_commit_in_order() -> None:
    images = SlowImages()
    # Images every fourth event (slow, on threads); text and broken events in between.
    values: list[bytes | None] = [
        None if i % 7 == 3 else event(i, images=1 if i % 4 == 0 else 0) for i in range(24)
    ]
    sent, commits = run_chain(values, images)
    assert len(images.threads) == 6
    assert all(name.startswith("guardstream-fetch") for name in images.threads)
    # Every event has exactly one record: a verdict, or a dead letter.
    verdicts = [
        json.loads(kwargs["value"])["source"]["offset"]
        for topic, kwargs in sent
        if topic == Settings().output_topic
    ]
    dead_letters = [topic for topic, _ in sent if topic == Settings().dlq_topic]
    assert sorted(verdicts) == [i for i in range(24) if i % 7 != 3]
    assert len(dead_letters) == 24 - len(verdicts)
    assert verdicts != sorted(verdicts)  # text events overtook the image ones
    # Yet the committed watermark only ever moved forward, and ends past the last event.
    watermarks = [c[P] for c in commits]
    assert watermarks == sorted(watermarks)
    assert watermarks[-1] == 24


def test_text_only_verdicts_run_in_the_calling_thread() -> None:
    images = SlowImages()
    sent, commits = run_chain([event(i, images=0) for i in range(5)], images)
    assert images.threads == []
    offsets = [json.loads(kwargs["value"])["source"]["offset"] for _, kwargs in sent]
    assert offsets == [0, 1, 2, 3, 4]  # nothing overtakes anything: in order
    assert commits[-1] == {P: 5}
