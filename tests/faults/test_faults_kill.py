"""Issue 7, fault 1 (and issue 4's exactly-once-across-a-hard-kill): three
``guardstream run`` processes in one group on a 6-partition topic; a random one is
SIGKILLed three times mid-stream and restarted. Every event ends as a verdict or a dead
letter; at-least-once duplicates stay within the in-flight window of each kill;
exactly-once, read with ``read_committed``, has none.
"""

from __future__ import annotations

import os
import random
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
    event_ids,
    image_events,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = int(os.environ.get("GUARDSTREAM_FAULTS_EVENTS", "5000"))
WORKERS = 3
PARTITIONS = 6
KILLS = 3


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_sigkill_a_random_worker_three_times(
    make_lab: Callable[..., Any],
    tiny_model_path: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
    exactly_once: bool,
) -> None:
    seed = int(os.environ.get("GUARDSTREAM_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    lab = make_lab(partitions=PARTITIONS)
    events = image_events(lab, EVENTS)
    sent = event_ids(events)
    lab.produce_events(events)

    group = [
        WorkerProcess(
            f"w{slot}",
            worker_env(
                lab,
                tiny_model_path,
                # A stable id per slot: the restarted process reuses the transactional
                # id and fences (aborts) what its killed predecessor left open.
                worker_id=f"{lab.name}-w{slot}",
                exactly_once=exactly_once,
                **SIZES,
            ),
            tmp_path,
        )
        for slot in range(WORKERS)
    ]
    workers.extend(group)
    for worker in group:
        worker.start()
    isolation = "read_committed" if exactly_once else "read_uncommitted"
    reader = OutputReader(lab, isolation_level=isolation).start()

    def all_alive() -> None:
        for worker in group:
            worker.check_alive()

    victims = []
    try:
        for kill in range(KILLS):
            # Mid-stream: after 20%, 40%, 60% of the events have an output.
            reader.wait_accounted(sent, EVENTS * (kill + 1) // 5, timeout_s=540, alive=all_alive)
            # A worker that is processing (not one still loading its model).
            victim = rng.choice([w for w in group if w.logged("verdict")] or group)
            victim.kill()
            victims.append(victim.name)
            victim.start()
        reader.wait_accounted(sent, EVENTS, timeout_s=540, alive=all_alive)
    finally:
        reader.stop()
    for worker in group:  # SIGTERM is handled once the consumer loop runs
        worker.wait_logged("partitions assigned", timeout_s=120)
    exits = [worker.stop() for worker in group]
    tally = OutputReader(lab, isolation_level=isolation).read_to_end()

    report = FaultReport.from_tally(
        "sigkill-3-workers",
        "exactly-once" if exactly_once else "at-least-once",
        sent,
        tally,
        kills=KILLS,
        restarts=KILLS,
        duplicate_bound=0 if exactly_once else KILLS * WINDOW,
        extra={
            "workers": WORKERS,
            "partitions": PARTITIONS,
            "victims": ",".join(victims),
            "seed": seed,
        },
    )
    report.emit()
    assert exits == [0] * WORKERS, [w.log_tail() for w in group]
    assert report.lost == 0, sorted(tally.lost(sent))[:20]
    assert not report.dead_letters_by_stage  # all events are valid, all images exist
    if exactly_once:
        assert report.duplicates == 0
    else:
        assert report.duplicates <= KILLS * WINDOW
