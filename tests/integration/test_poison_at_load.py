"""Poison at load (issue 15): a large backlog with 20 % hostile records (the kinds of
``hostile_cases``, mixed in at random) through one worker, next to a clean backlog of the
same size. The worker never restarts (one assignment, every record consumed once, the
thread never raises), every record ends as exactly one verdict or one dead letter of
the stage and error class its case gives, and the good events' throughput is printed
next to the clean run's.

An opt-in soak (minutes on 2 cores): ``GUARDSTREAM_SOAK=1``; ``GUARDSTREAM_SOAK_EVENTS``
sets the size of each backlog (default 20,000)::

    GUARDSTREAM_SOAK=1 pytest tests/integration/test_poison_at_load.py -s
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hostile_cases import CANARY, IMAGE_MAX_BYTES, Case, build_cases, dumps, event
from PIL import Image

from schemas.dead_letter import DeadLetterHeaders
from worker.engine.models import Models
from worker.lab import Lab, running_worker
from worker.lab import image_item as image
from worker.lab import text_item as text
from worker.lab.images import encode
from worker.lab.outputs import count_records

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("GUARDSTREAM_SOAK") != "1", reason="a soak: set GUARDSTREAM_SOAK=1"
    ),
    # Two backlogs of 20,000 at ~25 events/s on 2 cores: ~30 min, past pytest's default.
    pytest.mark.timeout(4 * 3600),
]

EVENTS = int(os.environ.get("GUARDSTREAM_SOAK_EVENTS", "20000"))
HOSTILE_SHARE = 0.2
MAX_PIXELS = 1_000_000  # as in the hostile corpus test: the 100 MP PNG is refused
IMAGES_PER_RUN = 16


@dataclass(frozen=True)
class Run:
    events: int
    good: int
    hostile: int
    seconds: float
    outcomes: Counter[str]

    @property
    def good_per_s(self) -> float:
        return self.good / self.seconds


def good_records(lab: Lab, run: str, count: int) -> list[tuple[bytes, bytes]]:
    """Distinct good events (the verdict cache never answers for another run's), one in
    four with one of ``IMAGES_PER_RUN`` images of this run (their own bytes: the vision
    cache starts cold in each run)."""
    uris = []
    for i in range(IMAGES_PER_RUN):
        colour = (len(run) * 40 % 256, (37 * i) % 256, (91 * i) % 256)
        data = encode(Image.new("RGB", (320 + i, 240), colour), "PNG")
        uris.append(lab.put_image(f"{run}-{i}.png", data))
    records = []
    for i in range(count):
        name = f"good-{run}-{i}"
        content = [text(f"{CANARY} {run} message number {i}")]
        if i % 4 == 0:
            content.insert(0, image(uris[i % IMAGES_PER_RUN]))
        records.append((f"good:{name}".encode(), dumps(event(name, *content))))
    return records


def backlog(lab: Lab, run: str, hostile: list[Case]) -> list[tuple[bytes, bytes | None]]:
    """``EVENTS`` records: good ones with ``HOSTILE_SHARE`` of cases drawn from
    ``hostile`` (every kind at least once when there is room), shuffled (seeded)."""
    rng = random.Random(15)
    n_hostile = round(EVENTS * HOSTILE_SHARE) if hostile else 0
    drawn = hostile[:n_hostile] + rng.choices(hostile, k=max(0, n_hostile - len(hostile)))
    records: list[tuple[bytes, bytes | None]] = [(c.key, c.value) for c in drawn]
    records += good_records(lab, run, EVENTS - len(records))
    rng.shuffle(records)
    return records


def run_backlog(
    lab: Lab,
    models: Models,
    model: str,
    run: str,
    hostile: list[Case],
) -> Run:
    records = backlog(lab, run, hostile)
    cases = {c.key: c for c in hostile}
    positions = lab.produce([v for _, v in records], [k for k, _ in records], bulk=True)
    by_position = {pos: key for pos, (key, _) in zip(positions, records, strict=True)}
    settings = lab.worker_settings(
        model=model,
        allowed_buckets=lab.bucket,
        image_max_bytes=IMAGE_MAX_BYTES,
        image_max_pixels=MAX_PIXELS,
        max_batch_size=8,
    )
    topics = [lab.output_topic, lab.dlq_topic]
    started = time.monotonic()
    with running_worker(settings, models) as worker:  # re-raises if the worker crashed
        written = 0
        deadline = started + 3 * 3600
        while written < len(records) and time.monotonic() < deadline:
            time.sleep(1.0)
            written = count_records(lab.kafka(), topics)
        seconds = time.monotonic() - started
        assert written >= len(records), f"{written} of {len(records)} outputs"
        stats = worker.processor.stats
        # Never restarted: one assignment kept, every record consumed exactly once.
        assert (stats.assigned, stats.revoked, stats.lost) == (1, 0, 0), stats
        assert stats.consumed == len(records), stats
    outputs = lab.read_outputs(timeout_s=600)  # everything written, duplicates included
    assert count_records(lab.kafka(), topics) == len(records)  # no duplicates
    found = outputs.by_position()
    assert len(found) == len(records)
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    for position, key in by_position.items():
        output = found[position]
        got = (
            f"{output.stage.value}/{output.error_class}"
            if isinstance(output, DeadLetterHeaders)
            else "verdict"
        )
        case = cases.get(key)
        want = (
            "verdict"
            if case is None or case.stage is None
            else f"{case.stage.value}/{case.error_class}"
        )
        if got != want:
            wrong.append(f"{key!r} at {position}: expected {want}, got {got}")
        outcomes[got.split("/")[0]] += 1
    assert not wrong, "\n".join(wrong[:20])
    good = sum(1 for key in by_position.values() if key not in cases)
    return Run(len(records), good, len(records) - good, seconds, outcomes)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_poison_at_load(
    new_lab: Any,
    kafka_bootstrap: str,
    s3_client: Any,
    unique_name: Any,
    models: Models,
    tiny_model_path: str,
) -> None:
    clean_lab = new_lab(kafka_bootstrap, s3_client(), unique_name("soak-clean"))
    poison_lab = new_lab(kafka_bootstrap, s3_client(), unique_name("soak-poison"))
    hostile = build_cases(poison_lab.bucket, poison_lab.put_image)
    clean = run_backlog(clean_lab, models, tiny_model_path, "clean", [])
    poison = run_backlog(poison_lab, models, tiny_model_path, "poison", hostile)
    assert clean.outcomes == Counter(verdict=EVENTS)
    assert poison.hostile == round(EVENTS * HOSTILE_SHARE)
    kinds = len({c.name for c in hostile})
    print(
        f"\nPOISON at load: {EVENTS} events each run, one worker (tiny model, CPU, "
        f"os.cpu_count()={os.cpu_count()}, load {os.getloadavg()[0]:.2f}); "
        f"clean: {clean.good} good in {clean.seconds:.0f} s = {clean.good_per_s:.1f} good/s; "
        f"poison: {poison.hostile} hostile ({kinds} kinds) + {poison.good} good in "
        f"{poison.seconds:.0f} s = {poison.good_per_s:.1f} good/s "
        f"({poison.good_per_s / clean.good_per_s:.0%} of clean), outcomes "
        f"{dict(sorted(poison.outcomes.items()))}; restarts 0, wrong outcomes 0, duplicates 0"
    )
