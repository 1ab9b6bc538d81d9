"""Issue 7, fault 4: the model fails on one sample, or gives an answer that does not parse.

* An exception is contained: ``LlamaGuardClassifier`` retries a failed batch one sample
  at a time, the one sample is dead-lettered at stage ``classify`` and the rest of its
  batch gets verdicts.
* A category answer that does not parse (the model says ``unsafe`` and then no ``S<n>``
  line) comes out of the real decode: the fast path scores from the first answer
  token and reads categories leniently, so it cannot raise ``UnparseableOutput`` (only
  the reference path's ``parse_answer`` does). It fails closed: an ``unsafe`` verdict
  with no categories, never a crash, a dead letter or a ``safe``.

In-process worker, tiny model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from fault_harness import FaultReport, OutputReader

from schemas.dead_letter import ErrorStage
from worker.engine import CachingClassifier, LlamaGuardClassifier, token_ids
from worker.engine.answers import parse_answer
from worker.engine.exceptions import UnparseableOutput
from worker.engine.models import Models
from worker.lab import conversation, png_bytes, running_worker

pytestmark = [pytest.mark.integration]


def _vision(models: Models) -> LlamaGuardClassifier:
    vision = models.vision.inner if isinstance(models.vision, CachingClassifier) else models.vision
    assert isinstance(vision, LlamaGuardClassifier)
    return vision


def test_one_failing_sample_is_contained(
    make_lab: Callable[..., Any],
    models: Models,
    tiny_model_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = make_lab(partitions=1)
    poison_png = png_bytes(20, 20, (1, 2, 3))
    poison_sha = hashlib.sha256(poison_png).hexdigest()
    poison = lab.put_image("poison.png", poison_png)
    fine = lab.put_image("fine.png", png_bytes(20, 20, (200, 100, 0)))
    # Distinct texts: no verdict-cache hits, every event reaches the model.
    events = [
        conversation(f"m{i}", images=(fine,), text=f"exception batch mate {i}") for i in range(15)
    ]
    events.insert(7, conversation("poisoned", images=(poison,), text="exception poisoned"))
    sent = {e["event_id"] for e in events}

    vision = _vision(models)
    score_batch = vision._score_batch
    chunks: list[tuple[int, bool]] = []

    def failing_score_batch(chunk: Sequence[Any]) -> Any:
        poisoned = any(s.image is not None and s.image.sha256 == poison_sha for s in chunk)
        chunks.append((len(chunk), poisoned))
        if poisoned:
            raise RuntimeError("injected: the model raised")
        return score_batch(chunk)

    monkeypatch.setattr(vision, "_score_batch", failing_score_batch)
    lab.produce_events(events)  # all there before the worker starts: full batches
    settings = lab.worker_settings(model=tiny_model_path, max_batch_size=8, max_batch_wait_ms=500)
    with running_worker(settings, models):
        outputs = lab.read_outputs(expected=len(events), timeout_s=120)
    tally = OutputReader(lab).read_to_end()

    FaultReport.from_tally(
        "model-failure-exception",
        "at-least-once",
        sent,
        tally,
        extra={"poisoned_batch_size": max(n for n, poisoned in chunks if poisoned)},
    ).emit()
    assert any(n > 1 and poisoned for n, poisoned in chunks)  # it did share a batch
    assert set(outputs.verdicts) == sent - {"poisoned"}
    [[(headers, record)]] = outputs.dead_letters.values()
    assert headers.stage is ErrorStage.CLASSIFY
    assert headers.error_class == "RuntimeError"
    assert b'"poisoned"' in record.value
    assert tally.duplicates() == 0


@contextmanager
def answers_unsafe_without_categories(vision: LlamaGuardClassifier) -> Iterator[list[str]]:
    """The model itself, changed: its output layer favours the ``unsafe`` token at
    every position, so the first answer token is ``unsafe`` and the greedy category
    decode goes on saying ``unsafe``, never a category. Yields the raw answers the
    real decode produced."""
    model: Any = vision._model
    bias = torch.zeros(model.lm_head.out_features)
    bias[token_ids.UNSAFE] = 100.0
    hook = model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias.to(out))
    decode = vision._decode_categories
    answers: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> dict[int, str]:
        decoded = decode(*args, **kwargs)
        answers.extend(decoded.values())
        return decoded

    vision._decode_categories = recording
    try:
        yield answers
    finally:
        hook.remove()
        del vision._decode_categories


def test_unparseable_category_answer_is_an_unsafe_verdict(
    make_lab: Callable[..., Any], models: Models, tiny_model_path: str
) -> None:
    lab = make_lab(partitions=1)
    picture = lab.put_image("picture.png", png_bytes(20, 20, (10, 200, 30)))
    # Text-only and image events (two batch groups); texts new to the verdict cache.
    events = [
        conversation(f"u{i}", images=(picture,) if i % 2 else (), text=f"{lab.name} {i}")
        for i in range(12)
    ]
    sent = {e["event_id"] for e in events}
    lab.produce_events(events)
    settings = lab.worker_settings(model=tiny_model_path, max_batch_size=4)
    with (
        answers_unsafe_without_categories(_vision(models)) as answers,
        running_worker(settings, models),
    ):
        lab.read_outputs(expected=len(events), timeout_s=120)
    outputs = lab.read_outputs()
    tally = OutputReader(lab).read_to_end()
    FaultReport.from_tally(
        "model-answer-unparseable",
        "at-least-once",
        sent,
        tally,
        extra={"unparseable_answers": len(answers)},
    ).emit()

    # The answers really came from the model's decode, and do not parse.
    assert len(answers) == len(events)
    for answer in answers:
        with pytest.raises(UnparseableOutput):
            parse_answer(answer, [f"S{n}" for n in range(1, 15)])
    # Each still ends as one verdict, unsafe and without categories: fail closed.
    assert not outputs.dead_letters
    assert {e: len(v) for e, v in outputs.verdicts.items()} == dict.fromkeys(sent, 1)
    for [verdict] in outputs.verdicts.values():
        assert verdict.verdict == "unsafe"
        assert verdict.categories == []
        assert verdict.unsafe_score > 0.99
    assert tally.duplicates() == 0
