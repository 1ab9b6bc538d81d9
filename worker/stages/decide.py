"""Stage ``decide``: a classified event's scores → the tenant profile's action.

Runs inline in the consumer thread (``RunTask``), right after the model step: the
decision is a pure function of the scores and the profile the event was decoded with
(``worker.policy.decide``); an image that matched a known-bad image bank makes it
``block`` (``worker.policy.hash_match_decision``).
"""

from __future__ import annotations

from worker.engine.aggregate import aggregate
from worker.engine.types import ClassificationResult
from worker.metrics import Metrics
from worker.policy import decide, hash_match_decision
from worker.streaming.types import Message
from worker.work import ClassifiedEvent, DecidedEvent, Work


def decide_event(classified: ClassifiedEvent) -> DecidedEvent:
    """Aggregate the per-image results and apply the event's profile."""
    decoded = classified.fetched.decoded
    overall = aggregate(classified.results)
    scores = max_category_scores(classified.results)
    banks = [match.entry.bank for match in classified.fetched.matches if match is not None]
    if banks:
        decision = hash_match_decision(decoded.profile, banks)
    else:
        decision = decide(decoded.profile, overall.unsafe_score, scores, decoded.event.event_id)
    return DecidedEvent(classified, overall, scores, decision)


def max_category_scores(results: tuple[ClassificationResult, ...]) -> dict[str, float]:
    """Per category key, the maximum over the conversation's prompts (one per image)."""
    scores: dict[str, float] = {}
    for result in results:
        for key, score in result.category_scores:
            if score > scores.get(key, -1.0):
                scores[key] = score
    return scores


class Decide:
    """``decide_event`` as the worker's step runs it: counts every action."""

    def __init__(self, metrics: Metrics) -> None:
        self._actions = {
            action: metrics.actions.labels(action=action) for action in ("allow", "review", "block")
        }

    def __call__(self, message: Message[Work]) -> Work:
        work = message.payload
        if not isinstance(work, ClassifiedEvent):
            return work
        decided = decide_event(work)
        self._actions[decided.decision.action].inc()
        return decided
