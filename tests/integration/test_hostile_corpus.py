"""Issue 7's hostile input corpus, end to end: every case, plus a few good events, in
one topic; one worker run on the real broker and S3 server. Each case ends as exactly
one verdict or one dead letter of the stage and error class ``hostile_cases`` gives;
the worker never crashes; the good events get verdicts. Security checks on the same
run: no message text in the logs, no image bytes or URLs in verdicts, and the image
decoder never runs on an image over the pixel limit.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hostile_cases import CANARY, IMAGE_MAX_BYTES, Case, build_cases, good_events
from kafka import KafkaConsumer, TopicPartition
from PIL import ImageFile

from schemas.dead_letter import DeadLetterHeaders
from schemas.verdict import VerdictEvent
from worker.engine.models import Models
from worker.lab import Lab, png_bytes, running_worker
from worker.logs import configure_logging, logged_events

pytestmark = pytest.mark.integration

MAX_PIXELS = 1_000_000


@pytest.fixture
def debug_json_logs() -> Iterator[None]:
    """The worker's own logging setup, at DEBUG (the most it would ever say), content off."""
    saved = structlog.get_config()
    levels = {name: logging.getLogger(name).level for name in ("kafka", "botocore", "urllib3")}
    configure_logging("DEBUG", "json", log_content=False)
    yield
    structlog.configure(**saved)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(width, height) of every image whose pixels PIL decodes."""
    sizes: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


def raw_records(lab: Lab, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=lab.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    records: list[Any] = []
    try:
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_hostile_corpus(
    lab: Lab,
    models: Models,
    tiny_model_path: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    debug_json_logs: None,
    decoded_sizes: list[tuple[int, int]],
    kafka_driver: str,
) -> None:
    cases = build_cases(lab.bucket, lab.put_image)
    assert len(cases) >= 40
    assert len({c.name for c in cases}) == len(cases)
    good = good_events(lab.put_image("good-event.png", png_bytes(64, 48)))
    # Good events first, in the middle and last: the stream keeps flowing around the rest.
    third = len(cases) // 3
    records: list[tuple[bytes, bytes | None]] = [
        *[(f"good:{name}".encode(), value) for name, value in good[:2]],
        *[(c.key, c.value) for c in cases[:third]],
        (f"good:{good[2][0]}".encode(), good[2][1]),
        *[(c.key, c.value) for c in cases[third:]],
        (f"good:{good[3][0]}".encode(), good[3][1]),
    ]
    lab.produce([value for _, value in records], [key for key, _ in records])

    settings = lab.worker_settings(
        model=tiny_model_path,
        allowed_buckets=lab.bucket,
        image_max_bytes=IMAGE_MAX_BYTES,
        image_max_pixels=MAX_PIXELS,
        max_batch_size=8,
        kafka_driver=kafka_driver,
    )
    with running_worker(settings, models) as worker:  # re-raises if the worker crashed
        outputs = lab.read_outputs(expected=len(records), timeout_s=240)
        assert worker.processor.stats.consumed == len(records)

    # -- each case: exactly one output, of the expected kind ------------------------------
    dead: dict[bytes, list[DeadLetterHeaders]] = {}
    for letters in outputs.dead_letters.values():
        for headers, record in letters:
            dead.setdefault(record.key, []).append(headers)
    wrong: list[str] = []
    for case in cases:
        got = _outcome(case, outputs.verdicts, dead)
        want = "verdict" if case.stage is None else f"{case.stage.value}/{case.error_class}"
        if got != want:
            wrong.append(f"{case.name}: expected {want}, got {got}")
    assert not wrong, "\n".join(wrong)
    for name, _ in good:
        assert len(outputs.verdicts.get(name, [])) == 1, name

    # -- security: no message text in the logs --------------------------------------------
    captured = capfd.readouterr()
    stages = Counter(c.stage.value if c.stage else "verdict" for c in cases)
    print(f"\nHOSTILE corpus: {len(cases)} cases + {len(good)} good events: {dict(stages)}")
    logs = "\n".join((captured.out, captured.err, caplog.text))
    assert "dead letter" in logged_events(logs)  # the logs were captured, at DEBUG
    assert CANARY not in logs
    for headers_of_case in dead.values():
        for dead_headers in headers_of_case:
            assert CANARY not in dead_headers.error_message

    # -- security: verdicts carry no image bytes, no URLs, no content ---------------------
    for record in raw_records(lab, lab.output_topic):
        raw = record.value.decode("utf-8")
        assert CANARY not in raw
        for marker in (
            "http://",
            "https://",
            "X-Amz-",
            "Signature=",
            "AWSAccessKeyId",
            "iVBORw0KGgo",
            "/9j/",
        ):
            assert marker not in raw, marker
        document = json.loads(raw)
        assert set(document) <= set(VerdictEvent.model_fields)
        for item in document["images"]:
            assert set(item) == {
                "s3_uri",
                "sha256",
                "verdict",
                "categories",
                "unsafe_score",
                "category_scores",
                "pdq",
                "md5",
                "hash_match",
            }
            assert item["s3_uri"].startswith(f"s3://{lab.bucket}/")
        assert len(record.value) < 4096

    # -- security: the decoder never ran on an image over the pixel limit -----------------
    assert decoded_sizes, "no image was decoded at all"
    assert all(w * h <= MAX_PIXELS for w, h in decoded_sizes), decoded_sizes


def _outcome(
    case: Case, verdicts: dict[str, list[VerdictEvent]], dead: dict[bytes, list[DeadLetterHeaders]]
) -> str:
    found = [f"{h.stage.value}/{h.error_class}" for h in dead.get(case.key, [])]
    found += ["verdict"] * len(verdicts.get(case.name, []))
    return found[0] if len(found) == 1 else f"{len(found)} outputs {found}"


def test_record_just_under_the_size_limit_is_dead_lettered(
    lab: Lab, models: Models, tiny_model_path: str, kafka_driver: str
) -> None:
    """A record the input topic accepts, whose dead letter (value + guardstream.*
    headers) would be over the producer's max_request_size: dead-lettered without its
    value (``guardstream.omitted``), not a poison pill that stops the worker forever."""
    # As large as a default producer sends (max_request_size 1 MiB, ~100 bytes of overhead);
    # the broker's message.max.bytes (~1 MiB) accepts it too.
    lab.produce([b"\x00" * 1_048_400, b"not json"])
    with running_worker(
        lab.worker_settings(model=tiny_model_path, kafka_driver=kafka_driver), models
    ):
        outputs = lab.read_outputs(expected=2, timeout_s=60)
    assert outputs.accounted() == 2
    letters = [headers for batch in outputs.dead_letters.values() for headers, _ in batch]
    assert sorted(h.omitted or "" for h in letters) == ["", "value=1048400"]
    assert {h.stage.value for h in letters} == {"decode"}
