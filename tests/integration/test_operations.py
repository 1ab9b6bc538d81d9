"""What an SRE scrapes and reads: /metrics, /healthz, /readyz and the logs, while the
worker runs against the real broker and S3 server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from worker.engine.models import Models
from worker.health import HealthServer, HealthState
from worker.lab import Lab, conversation, png_bytes, running_worker, wait_for
from worker.logs import configure_logging
from worker.metrics import Metrics

pytestmark = pytest.mark.integration

CANARY = "canary-7f3a9 do not log me"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_worker_metrics_health_and_logs(
    lab: Lab, models: Models, tiny_model_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", log_content=False)
    image = lab.put_image("a.png", png_bytes())
    lab.produce_events(
        [conversation(f"m{i}", images=(image,) if i % 2 else (), text=CANARY) for i in range(6)]
        + [conversation("missing", images=(f"s3://{lab.bucket}/missing.png",), text=CANARY)]
    )
    lab.produce([b"not json " + CANARY.encode()])
    settings = lab.worker_settings(model=tiny_model_path)
    health = HealthState()
    metrics = Metrics()
    server = HealthServer(0, health, metrics.registry, host="127.0.0.1")
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, body = get(f"{base}/readyz")
        assert (status, body.strip()) == (503, "model not loaded")
        with running_worker(settings, models, metrics=metrics, health=health):
            assert wait_for(lambda: get(f"{base}/readyz")[0] == 200, timeout_s=30), get(
                f"{base}/readyz"
            )
            outputs = lab.read_outputs(expected=8, timeout_s=60)
            assert get(f"{base}/healthz") == (200, "ok\n")
            # Gauges refresh about once a second.
            assert wait_for(
                lambda: any(
                    name == "guardstream_consumer_lag"
                    for name, _ in samples(get(f"{base}/metrics")[1])
                ),
                timeout_s=10,
            )
            scraped = samples(get(f"{base}/metrics")[1])
    finally:
        server.stop()

    assert outputs.accounted() == 8
    assert scraped[("guardstream_events_consumed_total", ())] == 8
    verdicts = sum(v for (name, _), v in scraped.items() if name == "guardstream_verdicts_total")
    assert verdicts == 6
    assert scraped[("guardstream_dead_letters_total", (("stage", "fetch"),))] == 1
    assert scraped[("guardstream_dead_letters_total", (("stage", "decode"),))] == 1
    assert scraped[("guardstream_batch_size_count", ())] >= 1
    assert scraped[("guardstream_fetched_bytes_total", ())] > 0
    assert scraped[("guardstream_end_to_end_seconds_count", ())] == 6
    lag = {labels: v for (name, labels), v in scraped.items() if name == "guardstream_consumer_lag"}
    assert lag == {(("partition", "0"), ("topic", lab.input_topic)): 0}
    info = [labels for (name, labels), _ in scraped.items() if name == "guardstream_model_info"]
    assert dict(info[0])["role"] == "vision" and dict(info[0])["device"] == "cpu"
    # No label carries an event or conversation id.
    assert not any("m1" in value for _, labels in scraped for _, value in labels)

    logged = capsys.readouterr().err
    assert CANARY not in logged
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    verdict_lines = [line for line in lines if line.get("event") == "verdict"]
    assert {line["event_id"] for line in verdict_lines} == {f"m{i}" for i in range(6)}
    for line in verdict_lines:
        assert {"conversation_id", "topic", "partition", "offset"} <= line.keys()
    dead = {line["error_class"]: line for line in lines if line.get("event") == "dead letter"}
    assert dead["ObjectNotFound"]["event_id"] == "missing"
    assert dead["InvalidJson"]["offset"] == 7


def test_bad_setting_fails_at_start_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.cli import main

    assert main(["run", "--max-batch-size", "zero"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "guardstream: invalid setting GUARDSTREAM_MAX_BATCH_SIZE: Input should be a valid integer, "
        "unable to parse string as an integer (got 'zero')"
    ]
