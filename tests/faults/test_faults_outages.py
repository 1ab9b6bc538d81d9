"""Issue 7, faults 2 and 3 (and issue 4's transient S3 outage): the S3 server or the
Kafka broker is stopped mid-stream and started again; a worker running in-process
waits, retries, reconnects by itself, and nothing is lost or dead-lettered.

The services are the private ones ``scripts/test-faults`` starts (own ports and data
directory): ``scripts/services down|up`` here never touches the shared ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_harness import (
    SIZES,
    FaultReport,
    OutputReader,
    WorkerProcess,
    event_ids,
    image_events,
    services,
    worker_env,
)

from worker.engine.models import Models
from worker.images.fetcher import RetryPolicy
from worker.lab import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def min_retry_budget_s(policy: RetryPolicy) -> float:
    """The shortest time the fetcher keeps retrying one image (every jitter at its
    most unlucky): an outage shorter than this never dead-letters an event."""
    sleeps = [policy.delay_s(retry, 1.0) for retry in range(policy.max_attempts - 1)]
    return min(sum(sleeps), policy.max_seconds)


@pytest.mark.parametrize("outage_s", [3, 30], ids=["s3-down-3s", "s3-down-30s"])
def test_s3_outage_within_the_retry_budget(
    make_lab: Callable[..., Any], models: Models, tiny_model_path: str, outage_s: int
) -> None:
    lab = make_lab(partitions=2)
    events = image_events(lab, 400)
    sent = event_ids(events)
    before, during = events[:150], events[150:]
    # Defaults are 8 attempts / 120 s (at least ~45 s of retrying); the outage here is
    # `outage_s` plus however long S3Proxy takes to start on a loaded machine, so the
    # budget is set explicitly and the test checks the outage stayed inside it.
    policy = RetryPolicy(max_attempts=12, max_seconds=300.0)
    budget_s = min_retry_budget_s(policy)
    settings = lab.worker_settings(
        model=tiny_model_path,
        fetch_max_attempts=policy.max_attempts,
        fetch_max_seconds=policy.max_seconds,
        max_batch_size=16,
        max_batch_tiles=64,
    )
    lab.produce_events(before)
    reader = OutputReader(lab).start()
    try:
        with running_worker(settings, models) as worker:
            reader.wait_accounted(sent, 100, timeout_s=300)
            services("down", "s3")
            down_at = time.monotonic()
            lab.produce_events(during)  # Kafka is up: these arrive while S3 is down
            time.sleep(outage_s)  # the fault itself; nothing is asserted on time
            stalled_at = reader.accounted(sent)
            services("up", "s3")
            outage = time.monotonic() - down_at
            reader.wait_accounted(sent, len(sent), timeout_s=600)
            retries = (
                worker.metrics.registry.get_sample_value("guardstream_fetch_retries_total") or 0
            )
    finally:
        reader.stop()
    tally = OutputReader(lab).read_to_end()
    report = FaultReport.from_tally(
        f"s3-outage-{outage_s}s",
        "at-least-once",
        sent,
        tally,
        extra={
            "outage_s": round(outage, 1),
            "retry_budget_s": round(budget_s, 1),
            "fetch_retries": int(retries),
            "accounted_while_down": stalled_at,
        },
    )
    report.emit()
    assert outage < budget_s, "the outage outlasted the retry budget: the test premise broke"
    assert retries > 0  # the events did wait and retry
    assert stalled_at < len(sent)  # and were not all done before S3 went down
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert report.dead_letters_by_stage == {}
    assert report.duplicates == 0  # no restart, no rebalance: nothing is redone


def test_broker_restart_mid_stream(
    make_lab: Callable[..., Any], models: Models, tiny_model_path: str
) -> None:
    lab = make_lab(partitions=3)
    events = image_events(lab, 900)
    sent = event_ids(events)
    before, after = events[:600], events[600:]
    settings = lab.worker_settings(model=tiny_model_path, max_batch_size=16, max_batch_tiles=64)
    lab.produce_events(before)
    reader = OutputReader(lab).start()
    try:
        with running_worker(settings, models):
            reader.wait_accounted(sent, 200, timeout_s=300)
            services("down", "kafka")  # controlled shutdown; the data dir is kept
            services("up", "kafka")
            # Produced after the restart: consumed only if the worker reconnected.
            lab.produce_events(after)
            reader.wait_accounted(sent, len(sent), timeout_s=600)
    finally:
        reader.stop()
    tally = OutputReader(lab).read_to_end()
    report = FaultReport.from_tally(
        "broker-restart", "at-least-once", sent, tally, extra={"broker_restarts": 1}
    )
    report.emit()
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert report.dead_letters_by_stage == {}
    # Whatever was done and not yet committed when the broker went away may be redone.
    assert report.duplicates <= settings.max_in_flight + settings.max_poll_records + 3 * 16


@pytest.mark.parametrize("kafka_driver", ["kafka-python", "confluent"])
def test_broker_restart_exactly_once_under_a_supervisor(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[Any],
    tmp_path: Path,
    kafka_driver: str,
) -> None:
    """Exactly-once across a broker restart, with ``guardstream run`` as a process and
    the test as its supervisor (what Kubernetes does): a transaction that cannot finish
    while the broker is away stops the worker without committing (exit != 0); the
    restarted worker fences it, and a ``read_committed`` reader sees every event once."""
    lab = make_lab(partitions=3)
    events = image_events(lab, 900, prefix="b")
    sent = event_ids(events)
    before, after = events[:600], events[600:]
    env = worker_env(
        lab,
        tiny_model_path,
        worker_id=f"{lab.name}-w",
        exactly_once=True,
        kafka_driver=kafka_driver,
        **SIZES,
    )
    worker = WorkerProcess("w", env, tmp_path)
    workers.append(worker)
    exits: list[int | None] = []

    def supervise() -> None:
        if not worker.running:
            exits.append(worker.proc.returncode if worker.proc else None)
            worker.start()

    lab.produce_events(before)
    reader = OutputReader(lab, isolation_level="read_committed").start()
    try:
        worker.start()
        reader.wait_accounted(sent, 200, timeout_s=300, alive=worker.check_alive)
        services("down", "kafka")
        services("up", "kafka")
        lab.produce_events(after)
        reader.wait_accounted(sent, len(sent), timeout_s=600, alive=supervise)
    finally:
        reader.stop()
    worker.wait_logged("partitions assigned")
    assert worker.stop() == 0
    tally = OutputReader(lab, isolation_level="read_committed").read_to_end()
    report = FaultReport.from_tally(
        "broker-restart-supervised",
        "exactly-once",
        sent,
        tally,
        restarts=len(exits),
        duplicate_bound=0,
        extra={"broker_restarts": 1, "worker_exit_codes": ",".join(map(str, exits)) or "none"},
    )
    report.emit()
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert report.duplicates == 0
    assert not report.dead_letters_by_stage
