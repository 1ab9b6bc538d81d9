"""Issue 15: degraded networks. Toxiproxy sits between the worker and the broker (the
private broker advertises the proxy's port on a listener of its own, so the worker's
connections stay on the proxy) and between the worker and S3. The test's own producer and
readers talk to the services directly.

* broker path: 300 ms latency with jitter, a bandwidth cap, connection resets every two
  seconds, a 20 s blackhole (connections accepted, nothing answered); at-least-once
  loses nothing, exactly-once has no duplicate under ``read_committed``.
* S3 path: 2 s latency, connections cut mid-body, a 20 s blackhole, then a third of the
  connections stalled: nothing lost or dead-lettered within the retry budget, and events
  keep finishing while some reads hang (a stalled read holds only its own fetch thread).
* /readyz goes unready while the broker is unreachable and comes back by itself.

Each test prints a FAULTS line. Time is only ever the length of a fault, never asserted.
"""

from __future__ import annotations

import io
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_harness import (
    SIZES,
    WINDOW,
    FaultReport,
    OutputReader,
    WorkerProcess,
    event_ids,
    image_events,
    worker_env,
)
from PIL import Image
from toxiproxy import Proxy, Toxiproxy, free_port
from worker_harness import Lab, conversation, running_worker

from worker.pipeline import Models

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    binary = os.environ.get("GUARDSTREAM_TOXIPROXY_BIN")
    if not binary:
        pytest.fail("GUARDSTREAM_TOXIPROXY_BIN is not set: run these under scripts/test-faults")
    server = Toxiproxy(
        binary,
        int(os.environ.get("GUARDSTREAM_TOXIPROXY_PORT", "18474")),
        tmp_path_factory.mktemp("toxiproxy"),
    )
    yield server
    server.close()


@pytest.fixture
def kafka_proxy(toxiproxy: Toxiproxy) -> Proxy:
    """127.0.0.1:19095 → the broker's PROXIED listener (which advertises 19095)."""
    upstream = f"127.0.0.1:{os.environ['GUARDSTREAM_KAFKA_PROXIED_PORT']}"
    return toxiproxy.proxy("kafka", int(os.environ["GUARDSTREAM_TOXIPROXY_KAFKA_PORT"]), upstream)


@pytest.fixture
def s3_proxy(toxiproxy: Toxiproxy) -> Proxy:
    upstream = os.environ["GUARDSTREAM_S3_ENDPOINT_URL"].removeprefix("http://")
    return toxiproxy.proxy(
        "s3", int(os.environ.get("GUARDSTREAM_TOXIPROXY_S3_PORT", "19001")), upstream
    )


def hold(seconds: float, during: Callable[[], None] | None = None) -> None:
    """The fault's length; ``during`` (e.g. a supervisor) runs every 0.5 s meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if during is not None:
            during()
        time.sleep(0.5)


# --- broker path -----------------------------------------------------------------------


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_degraded_network_to_the_broker(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[WorkerProcess],
    kafka_proxy: Proxy,
    tmp_path: Path,
    exactly_once: bool,
) -> None:
    lab = make_lab(partitions=2)
    chunks = [image_events(lab, 100, prefix=f"p{k}-") for k in range(5)]
    sent = event_ids(e for chunk in chunks for e in chunk)
    env = worker_env(
        lab,
        tiny_model_path,
        kafka_bootstrap_servers=kafka_proxy.address,
        worker_id=f"{lab.name}-w",
        exactly_once=exactly_once,
        **SIZES,
    )
    worker = WorkerProcess("w", env, tmp_path)
    workers.append(worker)
    exits: list[int | None] = []

    def supervise() -> None:  # as Kubernetes would: restart a worker that exited
        if not worker.running:
            exits.append(worker.proc.returncode if worker.proc else None)
            worker.start()

    isolation = "read_committed" if exactly_once else "read_uncommitted"
    reader = OutputReader(lab, isolation_level=isolation).start()
    progress: dict[str, int] = {}
    try:
        lab.produce_events(chunks[0])
        worker.start()
        reader.wait_accounted(sent, 50, timeout_s=300, alive=worker.check_alive)
        phases: list[tuple[str, str, dict[str, Any]]] = [
            ("latency", "latency", {"latency": 300, "jitter": 150}),
            ("bandwidth", "bandwidth", {"rate": 32}),  # KB/s
            ("resets", "reset_peer", {"timeout": 2000}),
            ("blackhole", "timeout", {"timeout": 0}),
        ]
        for (phase, kind, attributes), chunk in zip(phases, chunks[1:], strict=True):
            with kafka_proxy.toxic(kind, **attributes):
                lab.produce_events(chunk)  # direct to the broker: arrives during the fault
                hold(20 if phase == "blackhole" else 12, during=supervise)
                progress[phase] = reader.accounted(sent)
        reader.wait_accounted(sent, len(sent), timeout_s=420, alive=supervise)
    finally:
        reader.stop()
    worker.wait_logged("partitions assigned")
    assert worker.stop() == 0
    tally = OutputReader(lab, isolation_level=isolation).read_to_end()
    bound = 0 if exactly_once else WINDOW * (len(exits) + len(phases))
    report = FaultReport.from_tally(
        "network-broker",
        "exactly-once" if exactly_once else "at-least-once",
        sent,
        tally,
        restarts=len(exits),
        duplicate_bound=bound,
        extra={
            "faults": "+".join(kafka_proxy.injected),
            "accounted_after": ",".join(f"{k}={v}" for k, v in progress.items()),
            "worker_exit_codes": ",".join(map(str, exits)) or "none",
        },
    )
    report.emit()
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert not report.dead_letters_by_stage
    # At-least-once: a fault outlasting the session timeout costs a rebalance (or a
    # restart), and what was done but not committed is redone: one window per disruption.
    assert report.duplicates <= bound


# --- S3 path ---------------------------------------------------------------------------


def noise_png(side: int, seed: int) -> bytes:
    """Incompressible (~3 bytes a pixel): a body big enough to be cut midway."""
    import random

    rng = random.Random(seed)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_degraded_network_to_s3(
    make_lab: Callable[..., Any],
    models: Models,
    tiny_model_path: str,
    s3_proxy: Proxy,
) -> None:
    lab: Lab = make_lab(partitions=2)
    uris = [lab.put_image(f"big/{k}.png", noise_png(160, k)) for k in range(4)]  # ~77 KB
    chunks = [
        [
            conversation(f"s{k}-{i}", images=(uris[i % 4],), text=f"s3 fault {i % 3}")
            for i in range(80)
        ]
        for k in range(5)
    ]
    sent = event_ids(e for chunk in chunks for e in chunk)
    fetch_max_seconds = 300.0
    settings = lab.settings(
        tiny_model_path,
        s3_endpoint_url=f"http://{s3_proxy.address}",
        fetch_max_attempts=14,
        fetch_max_seconds=fetch_max_seconds,
        max_batch_size=16,
        max_batch_tiles=64,
    )
    reader = OutputReader(lab).start()
    progress: dict[str, int] = {}
    try:
        lab.produce_events(chunks[0])
        with running_worker(settings, models) as worker:
            reader.wait_accounted(sent, 40, timeout_s=300)
            started = time.monotonic()
            phases: list[tuple[str, str, dict[str, Any]]] = [
                ("latency", "latency", {"latency": 2000}),
                ("cut-mid-body", "limit_data", {"bytes": 30_000}),
                ("blackhole", "timeout", {"timeout": 0}),
            ]
            for (phase, kind, attributes), chunk in zip(phases, chunks[1:4], strict=True):
                with s3_proxy.toxic(kind, **attributes):
                    lab.produce_events(chunk)
                    hold(20 if phase == "blackhole" else 10)
                    progress[phase] = reader.accounted(sent)
            faults_s = time.monotonic() - started
            # A third of the connections hang (accepted, never answered): the events
            # whose reads land on the others must keep finishing meanwhile.
            reader.wait_accounted(sent, 4 * 80, timeout_s=420)
            before_stall = reader.accounted(sent)
            with s3_proxy.toxic("timeout", toxicity=0.34, timeout=0):
                lab.produce_events(chunks[4])
                hold(20)
                during_stall = reader.accounted(sent) - before_stall
            reader.wait_accounted(sent, len(sent), timeout_s=420)
            retries = worker.metrics.registry.get_sample_value("guardstream_fetch_retries_total")
    finally:
        reader.stop()
    tally = OutputReader(lab).read_to_end()
    report = FaultReport.from_tally(
        "network-s3",
        "at-least-once",
        sent,
        tally,
        extra={
            "faults": "+".join(s3_proxy.injected),
            "accounted_after": ",".join(f"{k}={v}" for k, v in progress.items()),
            "finished_during_partial_stall": during_stall,
            "fetch_retries": int(retries or 0),
            "faults_s": round(faults_s, 1),
            "fetch_max_seconds": fetch_max_seconds,
        },
    )
    report.emit()
    assert faults_s < fetch_max_seconds, "the faults outlasted the retry budget: premise broke"
    assert (retries or 0) > 0
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert report.dead_letters_by_stage == {}
    assert report.duplicates == 0
    assert during_stall > 0, "stalled S3 reads held up the other fetch threads"


# --- readiness -------------------------------------------------------------------------


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_readyz(port: int, code: int, timeout_s: float, worker: WorkerProcess) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        worker.check_alive()
        status, body = readyz(port)
        if status == code:
            return body.strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {status} ({body.strip()}), wanted {code}")
        time.sleep(0.5)


@pytest.mark.parametrize("fault", ["unreachable", "blackhole"])
def test_readyz_follows_the_broker(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[WorkerProcess],
    kafka_proxy: Proxy,
    tmp_path: Path,
    fault: str,
) -> None:
    lab = make_lab(partitions=1)
    port = free_port()
    env = worker_env(
        lab,
        tiny_model_path,
        kafka_bootstrap_servers=kafka_proxy.address,
        metrics_port=port,
        ready_broker_timeout_s=5,
    )
    worker = WorkerProcess("w", env, tmp_path)
    workers.append(worker)
    events = image_events(lab, 40)
    sent = event_ids(events)
    lab.produce_events(events[:20])
    worker.start()
    first = wait_readyz(port, 200, 300, worker)
    if fault == "unreachable":  # connections closed, new ones refused
        kafka_proxy.set_enabled(False)
    else:  # connections accepted, nothing answered
        blackhole = kafka_proxy.add("timeout", timeout=0)
    down_at = time.monotonic()
    unready = wait_readyz(port, 503, 120, worker)
    unready_after_s = time.monotonic() - down_at
    lab.produce_events(events[20:])
    if fault == "unreachable":
        kafka_proxy.set_enabled(True)
    else:
        kafka_proxy.remove(blackhole)
    up_at = time.monotonic()
    again = wait_readyz(port, 200, 180, worker)
    ready_after_s = time.monotonic() - up_at
    reader = OutputReader(lab).start()
    try:
        reader.wait_accounted(sent, len(sent), timeout_s=300, alive=worker.check_alive)
    finally:
        reader.stop()
    assert worker.stop() == 0
    tally = OutputReader(lab).read_to_end()
    report = FaultReport.from_tally(
        f"network-readyz-{fault}",
        "at-least-once",
        sent,
        tally,
        extra={
            "faults": "+".join(kafka_proxy.injected),
            "unready_after_s": round(unready_after_s, 1),
            "ready_again_after_s": round(ready_after_s, 1),
            "unready_body": repr(unready),
        },
    )
    report.emit()
    assert first == "ok" and again == "ok"
    assert unready == "broker not reachable"
    assert report.lost == 0 and not report.dead_letters_by_stage
    assert report.duplicates <= WINDOW  # one rebalance's redone work at most
