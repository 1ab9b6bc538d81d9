"""The worker end to end on the real broker and S3 server with a tiny model on CPU."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from schemas.dead_letter import ErrorStage
from worker.engine.models import Models
from worker.lab import Lab, conversation, noise_png, png_bytes, running_worker

pytestmark = pytest.mark.integration


def test_every_event_ends_as_a_verdict_or_a_dead_letter(
    lab: Lab, models: Models, tiny_model_path: str, kafka_driver: str
) -> None:
    cat = lab.put_image("cat.png", png_bytes(80, 60))
    dog = lab.put_image("dir/dog.png", png_bytes(700, 300, (10, 200, 10)))
    big = lab.put_image("big.png", noise_png(100, 100))
    events = [
        conversation("text-only", text="how do I bake bread?"),
        conversation("one-image", images=(cat,)),
        conversation("two-images", images=(cat, dog)),
        conversation("custom-policy", images=(dog,), policy={"categories": {"S1": "Violence."}}),
        conversation("missing-object", images=(f"s3://{lab.bucket}/nope.png",)),
        conversation("other-bucket", images=("s3://not-allowed-bucket/x.png",)),
        conversation("too-big", images=(big,)),
    ]
    lab.produce_events(events)
    lab.produce([b"\xff\xfe not utf8", b'{"event_id": 1}'], headers=[("trace", b"t-1")])

    settings = lab.worker_settings(
        model=tiny_model_path,
        allowed_buckets=lab.bucket,
        image_max_bytes=2000,
        kafka_driver=kafka_driver,
    )
    with running_worker(settings, models):
        outputs = lab.read_outputs(expected=9, timeout_s=90)

    assert set(outputs.verdicts) == {"text-only", "one-image", "two-images", "custom-policy"}
    for verdicts in outputs.verdicts.values():
        assert len(verdicts) == 1
    two = outputs.verdicts["two-images"][0]
    assert [image.s3_uri for image in two.images] == [cat, dog]
    assert two.unsafe_score == max(image.unsafe_score for image in two.images)
    assert two.verdict == ("unsafe" if any(i.verdict == "unsafe" for i in two.images) else "safe")
    assert outputs.verdicts["text-only"][0].images == []
    # The event's own policy reached the model and its verdict: the policy hash is the
    # sha256 of the rendered category list (the contract), not the default policy's.
    custom = outputs.verdicts["custom-policy"][0]
    assert custom.policy_hash == hashlib.sha256(b"S1: Violence.\n").hexdigest()
    assert custom.policy_hash != outputs.verdicts["one-image"][0].policy_hash
    assert set(custom.categories) <= {"S1"}
    assert outputs.verdicts["one-image"][0].source.topic == lab.input_topic

    stages = {
        where: (headers.stage, headers.error_class)
        for where, [(headers, _)] in outputs.dead_letters.items()
    }
    assert sorted(stages.values()) == sorted(
        [
            (ErrorStage.FETCH, "ObjectNotFound"),
            (ErrorStage.FETCH, "BucketNotAllowed"),
            (ErrorStage.FETCH, "ImageTooLarge"),
            (ErrorStage.DECODE, "InvalidUtf8"),
            (ErrorStage.VALIDATE, "SchemaError"),
        ]
    )
    # Dead letters carry the consumed record byte for byte, original headers kept.
    (headers, record) = outputs.dead_letters["0:7"][0]
    assert record.value == b"\xff\xfe not utf8"
    assert ("trace", b"t-1") in record.headers
    assert headers.original_topic == lab.input_topic


def test_restart_mid_stream_accounts_for_every_event(
    lab: Lab, models: Models, tiny_model_path: str, kafka_driver: str
) -> None:
    image = lab.put_image("a.png", png_bytes())
    events = [conversation(f"e{i}", images=(image,) if i % 2 else ()) for i in range(30)]
    lab.produce_events(events)
    settings = lab.worker_settings(
        model=tiny_model_path, max_batch_size=2, kafka_driver=kafka_driver
    )
    with running_worker(settings, models):
        first = lab.read_outputs(expected=5, timeout_s=60)
    assert first.accounted() >= 5
    with running_worker(settings, models):
        lab.read_outputs(expected=30, timeout_s=90)
    # Every record the two runs wrote, duplicates included (both workers have stopped).
    outputs = lab.read_outputs()
    # At-least-once redoes only work that was published but not committed when a worker
    # went away. A stop drains: it commits everything it published first, so across
    # this restart the bound on duplicates is 0: each event has exactly one verdict.
    counts = Counter({event_id: len(v) for event_id, v in outputs.verdicts.items()})
    assert counts == Counter({f"e{i}": 1 for i in range(30)})
    assert not outputs.dead_letters
