"""Known-bad image banks in the running worker, on the real broker and S3 (issue 16): an
entry published while the worker runs takes effect for the next events, a matching image
is blocked without a model call (the model's requests are counted), a tombstone lifts it,
and a restarted worker rebuilds the bank from the topic; once in each delivery mode."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from images.image_builders import encode, photo_like

from schemas.hashbank import HashBankEntry
from worker.engine.models import Models
from worker.engine.types import ClassificationRequest, ClassificationResult, ModelInfo, Outcome
from worker.hashbank import entry_record, hash_image, tombstone_key
from worker.images.decode import ImageLimits, decode_image
from worker.images.types import TilingSpec
from worker.lab import Lab, conversation, running_worker, wait_for
from worker.pipeline import Worker

pytestmark = pytest.mark.integration

ORIGINAL = encode(photo_like(480, 360, seed=7), "JPEG", quality=92)
REUPLOAD = encode(photo_like(480, 360, seed=7).resize((240, 180)), "JPEG", quality=60)


class CountingClassifier:
    """Implements ``Classifier``: every request safe; counts them."""

    model_info = ModelInfo(id="counting", revision="1", dtype="none", device="cpu")

    def __init__(self) -> None:
        self.requests = 0

    def set_cache_observer(self, observer: Any) -> None:
        pass

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        self.requests += len(requests)
        safe = ClassificationResult(0.02, False, (), 0.0, 0.0, None)
        return [safe for _ in requests]


def bank_entry() -> HashBankEntry:
    pdq = hash_image(decode_image(ORIGINAL, ImageLimits()), ORIGINAL).pdq
    return HashBankEntry.model_validate(
        {
            "signal": "pdq",
            "hash": pdq,
            "bank": "takedowns",
            "label": "case 4411",
            "categories": ["S4"],
            "added_at": "2026-12-01T00:00:00+00:00",
        }
    )


def has_key(worker: Worker, key: str, present: bool) -> bool:
    assert worker.bank is not None
    return (worker.bank.get(key) is not None) == present


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_bank_entries_take_effect_while_running_and_after_a_restart(
    lab: Lab, exactly_once: bool
) -> None:
    from worker.streaming.drivers.kafka_python import KafkaPythonDriver
    from worker.streaming.kafka_config import KafkaConnection
    from worker.streaming.topics import TopicSpec, ensure_topics

    bank_topic = f"{lab.topics.input}-bank-{uuid.uuid4().hex[:6]}"
    admin = KafkaPythonDriver().admin(KafkaConnection(lab.bootstrap))
    try:
        ensure_topics(admin, [TopicSpec(bank_topic, 1, configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    lab.created_topics.append(bank_topic)
    uri = lab.put_image("reupload.jpg", REUPLOAD)
    entry = bank_entry()
    key, value = entry_record(entry)
    settings = lab.worker_settings(
        model="unused", hash_bank_topic=bank_topic, exactly_once=exactly_once
    )
    classifier = CountingClassifier()
    models = Models(vision=classifier, tiling=TilingSpec())
    isolation = "read_committed" if exactly_once else "read_uncommitted"

    def event(name: str) -> bytes:
        from worker.lab import encode_event

        return encode_event(conversation(name, "look", images=[uri]))

    def verdict(name: str, expected: int) -> Any:
        lab.produce_records([(name.encode(), event(name))])
        outputs = lab.read_outputs(expected=expected, isolation_level=isolation)
        [found] = outputs.verdicts[name]
        return found

    with running_worker(settings, models) as worker:
        assert wait_for(lambda: worker.health.ready()[0], 60)
        before = verdict("before", 1)
        assert (before.action, classifier.requests) == ("allow", 1)
        assert before.images[0].pdq is not None and before.images[0].hash_match is None

        lab.produce_records([(key, value)], topic=bank_topic)
        assert wait_for(lambda: has_key(worker, entry.key, True), 30)
        blocked = verdict("blocked", 2)
        assert classifier.requests == 1  # not sent to the model
        assert (blocked.verdict, blocked.unsafe_score, blocked.categories) == (
            "unsafe",
            1.0,
            ["S4"],
        )
        assert (blocked.action, blocked.reasons) == ("block", ["hash_match:takedowns"])
        match = blocked.images[0].hash_match
        assert match is not None and match.bank == "takedowns" and match.label == "case 4411"
        assert 0 < match.distance <= 31

        lab.produce_records([(tombstone_key("pdq", entry.hash), None)], topic=bank_topic)
        assert wait_for(lambda: has_key(worker, entry.key, False), 30)
        lifted = verdict("lifted", 3)
        assert (lifted.action, classifier.requests) == ("allow", 2)

        lab.produce_records([(key, value)], topic=bank_topic)
        assert wait_for(lambda: has_key(worker, entry.key, True), 30)

    restarted_classifier = CountingClassifier()
    restarted = Models(vision=restarted_classifier, tiling=TilingSpec())
    with running_worker(settings, restarted) as worker:
        lab.produce_records([(b"after-restart", event("after-restart"))])  # before it loaded
        outputs = lab.read_outputs(expected=4, isolation_level=isolation)
        [again] = outputs.verdicts["after-restart"]
        assert again.action == "block" and restarted_classifier.requests == 0
        assert worker.bank is not None and len(worker.bank) == 1

    outputs = lab.read_outputs(isolation_level=isolation)
    assert sorted(outputs.verdicts) == ["after-restart", "before", "blocked", "lifted"]
    assert all(len(v) == 1 for v in outputs.verdicts.values())  # no duplicates
    assert not outputs.dead_letters
