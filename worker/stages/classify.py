"""Stage ``classify``: a micro-batch of events through the classifiers (``worker.engine``).

Runs on the model thread (``RunBatchesInThread``). A request whose image matched a
known-bad image bank with ``HASH_MATCH_ACTION=block`` is not sent to the model: its
result is the bank's (``bank_result``); with ``classify_too`` the model's result is
overridden by the match.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from schemas.dead_letter import ErrorStage
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    Classifier,
)
from worker.hashbank.bank import BankMatch
from worker.hashbank.matching import matched_image
from worker.metrics import Metrics
from worker.work import ClassifiedEvent, Failure, FetchedEvent, Work


def classify_batch(
    batch: Sequence[Work], vision: Classifier, text: Classifier | None = None
) -> list[Work]:
    """Classify every prompt of a micro-batch of events in one call per classifier
    (stage ``classify``); runs on the model thread.

    Text-only prompts go to ``text`` when a text model is configured. An event any
    of whose prompts failed is dead-lettered; the rest of the batch is unaffected.
    """
    routed: dict[int, list[tuple[int, int, ClassificationRequest]]] = {}
    for item_index, item in enumerate(batch):
        if isinstance(item, FetchedEvent):
            for request_index, request in enumerate(item.requests):
                if item.skips_model(request_index):
                    continue
                classifier_id = 1 if (text is not None and request.image is None) else 0
                routed.setdefault(classifier_id, []).append((item_index, request_index, request))

    outcomes: dict[tuple[int, int], ClassificationResult | ClassificationFailure] = {}
    for classifier_id, entries in routed.items():
        classifier = text if classifier_id == 1 and text is not None else vision
        results = classifier.classify([request for _, _, request in entries])
        for (item_index, request_index, _), outcome in zip(entries, results, strict=True):
            outcomes[(item_index, request_index)] = outcome

    output: list[Work] = []
    for item_index, item in enumerate(batch):
        if not isinstance(item, FetchedEvent):
            output.append(item)
            continue
        item_outcomes = [
            _with_match(item.match_of(i), outcomes.get((item_index, i)))
            for i in range(len(item.requests))
        ]
        failure = next((o for o in item_outcomes if isinstance(o, ClassificationFailure)), None)
        if failure is not None:
            output.append(
                Failure(
                    ErrorStage.CLASSIFY,
                    failure.error_class,
                    failure.message,
                    event=item.decoded.event,
                )
            )
        else:
            done = tuple(o for o in item_outcomes if isinstance(o, ClassificationResult))
            output.append(ClassifiedEvent(item, done))
    return output


def _with_match(
    match: BankMatch | None, outcome: ClassificationResult | ClassificationFailure | None
) -> ClassificationResult | ClassificationFailure:
    if match is None:
        assert outcome is not None  # only matched requests skip the model
        return outcome
    if isinstance(outcome, ClassificationFailure):
        return outcome  # classify_too: the model failed, the event is dead-lettered
    return bank_result(match, outcome)


def bank_result(
    match: BankMatch, model: ClassificationResult | None = None
) -> ClassificationResult:
    """A matched image's result: unsafe, score 1.0, the bank's categories (with
    ``classify_too``, the model's added; its category scores kept). Logits are the
    model's, or 0 where it did not run (they are not published)."""
    image = matched_image(match, model.categories if model is not None else ())
    return ClassificationResult(
        unsafe_score=image.unsafe_score,
        unsafe=image.unsafe,
        categories=image.categories,
        safe_logit=model.safe_logit if model is not None else 0.0,
        unsafe_logit=model.unsafe_logit if model is not None else 0.0,
        raw_output=model.raw_output if model is not None else None,
        category_scores=model.category_scores if model is not None else (),
    )


class Classify:
    """``classify_batch`` as the worker's model step runs it: batch size and model time."""

    def __init__(self, vision: Classifier, text: Classifier | None, metrics: Metrics) -> None:
        self._vision = vision
        self._text = text
        self._batch_size = metrics.batch_size
        self._seconds = metrics.classify_seconds

    def __call__(self, batch: list[Work]) -> list[Work]:
        prompts = sum(w.model_requests for w in batch if isinstance(w, FetchedEvent))
        started = time.monotonic()
        output = classify_batch(batch, self._vision, self._text)
        if prompts:
            self._batch_size.observe(prompts)
            self._seconds.observe(time.monotonic() - started)
        return output


def batch_cost(work: Work) -> int:
    """An event's share of ``MAX_BATCH_TILES``; failures cost nothing on the model."""
    return work.tiles if isinstance(work, FetchedEvent) else 0
