"""Issue 7, fault 4: the model fails on one sample (an exception, or an answer that
cannot be parsed). The failure is contained: ``LlamaGuardClassifier`` retries a failed
batch one sample at a time, the one sample is dead-lettered at stage ``classify`` and the
rest of its batch gets verdicts. In-process worker, tiny model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fault_harness import FaultReport, OutputReader
from worker_harness import conversation, png_bytes, running_worker

from schemas.dead_letter import ErrorStage
from worker.engine import CachingClassifier, LlamaGuardClassifier
from worker.engine.exceptions import UnparseableOutput
from worker.engine.models import Models

pytestmark = [pytest.mark.integration]

FAILURES: dict[str, Callable[[], Exception]] = {
    "exception": lambda: RuntimeError("injected: the model raised"),
    "unparseable": lambda: UnparseableOutput(
        "injected: answer does not start with 'safe' or 'unsafe': 'sorry'"
    ),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_one_failing_sample_is_contained(
    make_lab: Callable[..., Any],
    models: Models,
    tiny_model_path: str,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    lab = make_lab(partitions=1)
    poison_png = png_bytes(20, 20, (1, 2, 3))
    poison_sha = hashlib.sha256(poison_png).hexdigest()
    poison = lab.put_image("poison.png", poison_png)
    fine = lab.put_image("fine.png", png_bytes(20, 20, (200, 100, 0)))
    # Distinct texts: no verdict-cache hits, every event reaches the model.
    events = [
        conversation(f"m{i}", images=(fine,), text=f"{failure} batch mate {i}") for i in range(15)
    ]
    events.insert(7, conversation("poisoned", images=(poison,), text=f"{failure} poisoned"))
    sent = {e["event_id"] for e in events}

    vision = models.vision.inner if isinstance(models.vision, CachingClassifier) else models.vision
    assert isinstance(vision, LlamaGuardClassifier)
    score_batch = vision._score_batch
    chunks: list[tuple[int, bool]] = []

    def failing_score_batch(chunk: Sequence[Any]) -> Any:
        poisoned = any(s.image is not None and s.image.sha256 == poison_sha for s in chunk)
        chunks.append((len(chunk), poisoned))
        if poisoned:
            raise FAILURES[failure]()
        return score_batch(chunk)

    monkeypatch.setattr(vision, "_score_batch", failing_score_batch)
    lab.produce_events(events)  # all there before the worker starts: full batches
    settings = lab.settings(tiny_model_path, max_batch_size=8, max_batch_wait_ms=500)
    with running_worker(settings, models):
        outputs = lab.read_outputs(expected=len(events), timeout_s=120)
    tally = OutputReader(lab).read_to_end()

    FaultReport.from_tally(
        f"model-failure-{failure}",
        "at-least-once",
        sent,
        tally,
        extra={"poisoned_batch_size": max(n for n, poisoned in chunks if poisoned)},
    ).emit()
    assert any(n > 1 and poisoned for n, poisoned in chunks)  # it did share a batch
    assert set(outputs.verdicts) == sent - {"poisoned"}
    [[(headers, record)]] = outputs.dead_letters.values()
    assert headers.stage is ErrorStage.CLASSIFY
    assert headers.error_class == type(FAILURES[failure]()).__name__
    assert b'"poisoned"' in record.value
    assert tally.duplicates() == 0
