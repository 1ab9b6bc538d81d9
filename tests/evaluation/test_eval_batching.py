"""Micro-batches are cut as the worker's model step cuts them: by count and by tiles."""

from __future__ import annotations

import pytest

from worker.evaluation.batching import micro_batches


def cut(costs: list[int], max_size: int, max_cost: int) -> list[list[int]]:
    return [
        [costs[i] for i in batch]
        for batch in micro_batches(
            range(len(costs)), max_size=max_size, cost=lambda i: costs[i], max_cost=max_cost
        )
    ]


def test_batches_hold_at_most_max_size_items() -> None:
    assert cut([1] * 7, max_size=3, max_cost=100) == [[1, 1, 1], [1, 1, 1], [1]]


def test_an_item_that_would_overflow_the_budget_starts_the_next_batch() -> None:
    assert cut([4, 4, 4, 1, 8, 1], max_size=32, max_cost=10) == [[4, 4], [4, 1], [8, 1]]


def test_a_batch_that_reaches_the_budget_is_sealed() -> None:
    assert cut([5, 5, 1], max_size=32, max_cost=10) == [[5, 5], [1]]


def test_an_item_costlier_than_the_budget_goes_alone() -> None:
    assert cut([1, 40, 1], max_size=32, max_cost=32) == [[1], [40], [1]]


def test_every_item_is_kept_once_in_order() -> None:
    costs = [(i * 7) % 5 for i in range(50)]
    batches = list(micro_batches(range(50), max_size=4, cost=lambda i: costs[i], max_cost=6))
    assert [i for batch in batches for i in batch] == list(range(50))


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        list(micro_batches([1], max_size=0, cost=lambda _: 1, max_cost=1))
