"""``worker.pipeline.build_steps`` end to end on fakes: decode → fetch → classify →
records → produce → commit, without a broker."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import torch
from doubles import stub_models

from schemas.conversation import ImageContent
from worker.config import Settings
from worker.images.types import PreparedImage
from worker.lab import conversation, encode_event
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

    def verdict_offsets(self) -> list[int]:
        return [
            json.loads(kwargs["value"])["source"]["offset"]
            for topic, kwargs in self.sent
            if topic == Settings().output_topic
        ]


P = Partition("in", 0)


def event(index: int, images: int) -> bytes:
    uris = [f"s3://bucket/{index}-{i}.png" for i in range(images)]
    return encode_event(
        conversation(f"e{index}", f"hello {index}", images=uris, conversation_id=f"c{index}")
    )


class GatedImages:
    """load_image on the fetch threads: records the thread, and holds every fetch until
    the test opens the gate (so what overtakes what does not depend on timing)."""

    def __init__(self, *, open_: bool = False) -> None:
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.watermark_at_open: int | None = None  # the committed offset then
        if open_:
            self.gate.set()

    def __call__(self, item: ImageContent) -> PreparedImage:
        self.threads.append(threading.current_thread().name)
        if not self.gate.wait(timeout=30):
            raise AssertionError("the test never opened the gate")
        return PreparedImage(item.s3_uri, torch.zeros(1, 3, 2, 2), aspect_ratio_id=1, num_tiles=1)


def run_chain(
    values: list[bytes | None],
    images: GatedImages,
    open_when: Callable[[FakeProducer], bool] = lambda _: True,
) -> tuple[FakeProducer, list[Any]]:
    """Feed ``values`` as the consumer loop does (submit; on MessageRejected wait, poll,
    retry; poll between records), opening the image gate once ``open_when(producer)``."""
    settings = Settings(max_in_flight=4, max_batch_size=2, max_batch_wait_ms=0)
    tracker = OffsetTracker()
    commits: list[dict[Partition, int]] = []
    producer = FakeProducer()
    wakeup = threading.Event()
    step = build_steps(
        settings,
        stub_models(),
        images,
        Produce(producer, CommitOffsets(tracker, commits.append, commit_interval_s=0)),
        Metrics(),
        wakeup=wakeup,
    )

    def poll() -> None:
        step.poll()
        if not images.gate.is_set() and open_when(producer):
            images.watermark_at_open = commits[-1][P] if commits else 0
            images.gate.set()

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
                poll()
        poll()
    for _ in range(600):  # the gate's condition may need a few more polls
        if images.gate.is_set():
            break
        wakeup.wait(0.05)
        wakeup.clear()
        poll()
    assert images.gate.is_set(), "open_when never held"
    step.close()
    step.join(10)
    return producer, commits


def test_text_only_events_skip_the_fetch_threads_and_commit_in_order() -> None:
    images = GatedImages()
    # Images every fourth event (held on their threads); text and broken events between.
    values: list[bytes | None] = [
        None if i % 7 == 3 else event(i, images=1 if i % 4 == 0 else 0) for i in range(24)
    ]
    # The image fetches wait until text event 1's verdict is out: it overtook event 0.
    producer, commits = run_chain(values, images, lambda p: 1 in p.verdict_offsets())
    assert len(images.threads) == 6
    assert all(name.startswith("guardstream-fetch") for name in images.threads)
    # Every event has exactly one record: a verdict, or a dead letter.
    verdicts = producer.verdict_offsets()
    dead_letters = [topic for topic, _ in producer.sent if topic == Settings().dlq_topic]
    assert sorted(verdicts) == [i for i in range(24) if i % 7 != 3]
    assert len(dead_letters) == 24 - len(verdicts)
    assert verdicts.index(1) < verdicts.index(0)  # text events overtook the image ones
    # Yet the committed watermark only ever moved forward, and ends past the last event.
    watermarks = [c[P] for c in commits]
    assert watermarks == sorted(watermarks)
    assert watermarks[-1] == 24
    # While event 0's image was held, event 1 was published but nothing was committed.
    assert images.watermark_at_open == 0


def test_text_only_verdicts_run_in_the_calling_thread() -> None:
    images = GatedImages(open_=True)
    producer, commits = run_chain([event(i, images=0) for i in range(5)], images)
    assert images.threads == []
    offsets = [json.loads(kwargs["value"])["source"]["offset"] for _, kwargs in producer.sent]
    assert offsets == [0, 1, 2, 3, 4]  # nothing overtakes anything: in order
    assert commits[-1] == {P: 5}
