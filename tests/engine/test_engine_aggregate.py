"""Per-image results -> one verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from worker.engine.aggregate import aggregate
from worker.engine.types import ClassificationResult


def _result(score: float, categories: tuple[str, ...] = ()) -> ClassificationResult:
    return ClassificationResult(
        unsafe_score=score,
        unsafe=score >= 0.5,
        categories=categories,
        safe_logit=0.0,
        unsafe_logit=0.0,
        raw_output=None,
    )


def test_unsafe_if_any_union_and_max() -> None:
    results = [_result(0.1), _result(0.9, ("S10", "S2")), _result(0.7, ("S1", "S2"))]
    verdict = aggregate(results)
    assert verdict.unsafe
    assert verdict.unsafe_score == 0.9
    assert verdict.categories == ("S1", "S2", "S10")
    assert verdict.results == tuple(results)


def test_all_safe() -> None:
    verdict = aggregate([_result(0.2), _result(0.4)])
    assert not verdict.unsafe
    assert verdict.unsafe_score == 0.4
    assert verdict.categories == ()


def test_category_scores_take_the_max_over_images() -> None:
    first = replace(_result(0.9), category_scores=(("S1", 0.6), ("S10", 0.3)))
    second = replace(_result(0.7), category_scores=(("S1", 0.1), ("S10", 0.5), ("S2", 0.1)))
    verdict = aggregate([first, second])
    assert verdict.category_scores == (("S1", 0.6), ("S2", 0.1), ("S10", 0.5))
    assert aggregate([_result(0.2)]).category_scores == ()


def test_single_and_empty() -> None:
    assert aggregate([_result(0.6, ("S3",))]).categories == ("S3",)
    with pytest.raises(ValueError):
        aggregate([])
