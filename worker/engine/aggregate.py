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
    categories = {key for result in results for key in result.categories}
    scores: dict[str, float] = {}
    for result in results:
        for key, score in result.category_scores:
            scores[key] = max(score, scores.get(key, score))
    return AggregateVerdict(
        unsafe=any(result.unsafe for result in results),
        unsafe_score=max(result.unsafe_score for result in results),
        categories=tuple(sorted(categories, key=category_number)),
        results=tuple(results),
        category_scores=tuple(sorted(scores.items(), key=lambda item: category_number(item[0]))),
    )
