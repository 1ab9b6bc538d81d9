"""Issue 4: ``guardstream run`` as a process. SIGTERM mid-stream drains (exit 0, the
in-flight work published *and* committed); exactly-once survives a SIGKILL (a
``read_committed`` reader sees every event exactly once)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_harness import (
    SIZES,
    WINDOW,
    FaultReport,
    OutputReader,
    WorkerProcess,
    committed_offsets,
    event_ids,
    image_events,
    review_event_ids,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("kafka_driver", ["kafka-python", "confluent"])
def test_sigterm_drains_and_commits_in_flight_work(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
    kafka_driver: str,
) -> None:
    lab = make_lab(partitions=2)
    events = image_events(lab, 800, prefix="d")
    sent = event_ids(events)
    lab.produce_events(events)
    group_id = lab.topics.group
    # No periodic commits: whatever is committed at the end, the drain committed.
    env = worker_env(
        lab,
        tiny_model_path,
        worker_id=f"{lab.name}-w",
        commit_interval_ms=600_000,
        kafka_driver=kafka_driver,
        **SIZES,
    )
    worker = WorkerProcess("w", env, tmp_path)
    workers.append(worker)
    reader = OutputReader(lab).start()
    try:
        worker.start()
        reader.wait_accounted(sent, len(sent) // 3, timeout_s=300, alive=worker.check_alive)
        worker.signal(signal.SIGTERM)
        exit_code = worker.wait(timeout_s=120)
    finally:
        reader.stop()
    assert exit_code == 0, worker.log_tail()
    assert worker.logged("steps joined")
    drained = OutputReader(lab).read_to_end()
    committed = committed_offsets(lab, group_id)
    # Published and committed are the same set: every output's input offset is below
    # the committed offset of its partition, and every offset below it has an output.
    for partition in range(lab.partitions):
        done = {o for p, o in drained.sources if p == partition}
        assert done == set(range(committed[partition])), (partition, committed)
    assert 0 < sum(committed.values()) < len(sent)  # stopped mid-stream

    worker.start()
    reader = OutputReader(lab).start()
    try:
        reader.wait_accounted(sent, len(sent), timeout_s=300, alive=worker.check_alive)
    finally:
        reader.stop()
    worker.wait_logged("partitions assigned")
    assert worker.stop() == 0
    tally = OutputReader(lab).read_to_end()
    report = FaultReport.from_tally(
        "sigterm-drain",
        "at-least-once",
        sent,
        tally,
        restarts=1,
        duplicate_bound=WINDOW,
        extra={"sigterms": 1, "committed_at_sigterm": sum(committed.values())},
    )
    report.emit()
    assert report.lost == 0
    assert report.duplicates <= WINDOW
    assert not report.dead_letters_by_stage


@pytest.mark.parametrize("kafka_driver", ["kafka-python", "confluent"])
def test_exactly_once_across_a_hard_kill(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
    kafka_driver: str,
) -> None:
    lab = make_lab(partitions=2)
    events = image_events(lab, 800, prefix="x")
    sent = event_ids(events)
    lab.produce_events(events)
    # Every event also goes to review (a band over all scores): its ReviewRequest is in
    # the verdict's transaction, so it too must be there exactly once.
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[defaults]\nreview_band = [0.0, 1.0]\n")
    env = worker_env(
        lab,
        tiny_model_path,
        worker_id=f"{lab.name}-w",
        exactly_once=True,
        kafka_driver=kafka_driver,
        policy_file=str(policy_file),
        **SIZES,
    )
    worker = WorkerProcess("w", env, tmp_path)
    workers.append(worker)
    reader = OutputReader(lab, isolation_level="read_committed").start()
    try:
        worker.start()
        reader.wait_accounted(sent, len(sent) // 4, timeout_s=300, alive=worker.check_alive)
        worker.kill()
        worker.start()  # same transactional id: fences the dead one, aborts its transaction
        reader.wait_accounted(sent, len(sent), timeout_s=300, alive=worker.check_alive)
    finally:
        reader.stop()
    worker.wait_logged("partitions assigned")
    assert worker.stop() == 0
    committed = OutputReader(lab, isolation_level="read_committed").read_to_end()
    everything = OutputReader(lab, isolation_level="read_uncommitted").read_to_end()
    report = FaultReport.from_tally(
        "sigkill-exactly-once-1-worker",
        "exactly-once",
        sent,
        committed,
        kills=1,
        restarts=1,
        duplicate_bound=0,
        extra={"aborted_duplicates_read_uncommitted": everything.duplicates()},
    )
    reviewed = review_event_ids(lab)
    report.extra["review_records"] = len(reviewed)
    report.extra["review_duplicates"] = len(reviewed) - len(set(reviewed))
    report.emit()
    assert sorted(reviewed) == sorted(set(committed.verdicts))
    assert report.lost == 0
    assert report.duplicates == 0
    assert not report.dead_letters_by_stage
