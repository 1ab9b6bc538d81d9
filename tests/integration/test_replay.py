"""`guardstream replay` on the real broker: dead letters back to the input, once."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from schemas.dead_letter import REPLAY_COUNT
from worker.cli import main
from worker.engine.models import Models
from worker.lab import Lab, conversation, png_bytes, running_worker

pytestmark = pytest.mark.integration


def input_records(lab: Lab) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=lab.bootstrap, group_id=None)
    tp = TopicPartition(lab.input_topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    records: list[Any] = []
    while consumer.position(tp) < end:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records


def test_replay_redrives_fetch_failures_once_and_they_then_succeed(
    lab: Lab,
    models: Models,
    tiny_model_path: str,
    kafka_bootstrap: str,
    capsys: pytest.CaptureFixture[str],
    kafka_driver: str,
) -> None:
    model = tiny_model_path
    late = f"s3://{lab.bucket}/late.png"
    lab.produce_events(
        [conversation("late-1", images=(late,)), conversation("late-2", images=(late,))]
    )
    lab.produce([b"not json"])
    settings = lab.worker_settings(model=model, kafka_driver=kafka_driver)
    with running_worker(settings, models):
        first = lab.read_outputs(expected=3)
    assert len(first.dead_letters) == 3 and not first.verdicts

    # The object arrives late (e.g. an upload race); replay the fetch failures.
    lab.put_image("late.png", png_bytes())
    args = [
        "replay",
        "--stage",
        "fetch",
        "--kafka-bootstrap-servers",
        kafka_bootstrap,
        "--dlq-topic",
        lab.dlq_topic,
        "--input-topic",
        lab.input_topic,
        "--group-id",
        f"{lab.name}-group",
        "--kafka-driver",
        kafka_driver,
    ]
    assert main(args) == 0
    assert "scanned=3 replayed=2 refused=0 skipped=1" in capsys.readouterr().out
    assert main(args) == 0  # the replay group remembers: nothing is re-driven twice
    assert "scanned=0 replayed=0" in capsys.readouterr().out

    replayed = input_records(lab)[3:]
    assert len(replayed) == 2
    for record in replayed:
        headers = dict(record.headers)
        assert headers[REPLAY_COUNT] == b"1"
        assert not any(name.startswith("guardstream.error") for name in headers)

    with running_worker(settings, models):
        second = lab.read_outputs(expected=5)
    assert set(second.verdicts) == {"late-1", "late-2"}
