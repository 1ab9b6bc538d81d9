"""One verdict from the per-image results of one conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.conversation import category_number
from worker.engine.types import CategoryScores, ClassificationResult


@dataclass(slots=True, unsafe_hash=True)
class AggregateVerdict:
    unsafe: bool
    unsafe_score: float
    categories: tuple[str, ...]
    results: tuple[ClassificationResult, ...]
    category_scores: CategoryScores = ()


def aggregate(results: Sequence[ClassificationResult]) -> AggregateVerdict:
    """Unsafe if any prompt is; the union of categories (by number); the max score, and
    per category the max score over the prompts that carry it.

    The per-prompt results are kept in order (one per image).
    """
    if not results:
        raise ValueError("aggregate() needs at least one result")
    if len(results) == 1:
        # One prompt (every conversation without an image): nothing to merge across
        # prompts, only the keys to sort and de-duplicate as below.
        only = results[0]
        return AggregateVerdict(
            unsafe=only.unsafe,
            unsafe_score=only.unsafe_score,
            categories=_by_number(set(only.categories)),
            results=(only,),
            category_scores=_max_per_key(only.category_scores),
        )
    categories = {key for result in results for key in result.categories}
    return AggregateVerdict(
        unsafe=any(result.unsafe for result in results),
        unsafe_score=max(result.unsafe_score for result in results),
        categories=_by_number(categories),
        results=tuple(results),
        category_scores=_max_per_key(
            [item for result in results for item in result.category_scores]
        ),
    )


def _by_number(keys: set[str]) -> tuple[str, ...]:
    if not keys:
        return ()
    return tuple(sorted(keys, key=category_number))


def _max_per_key(items: Sequence[tuple[str, float]]) -> CategoryScores:
    """Per key the maximum score, sorted by category number."""
    if not items:
        return ()
    scores: dict[str, float] = {}
    for key, score in items:
        scores[key] = max(score, scores.get(key, score))
    return tuple(sorted(scores.items(), key=lambda item: category_number(item[0])))
