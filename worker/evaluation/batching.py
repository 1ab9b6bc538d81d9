"""Micro-batches cut the way the worker's model step cuts them (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def micro_batches(
    items: Iterable[T], *, max_size: int, cost: Callable[[T], int], max_cost: int
) -> Iterator[list[T]]:
    """Batches of at most ``max_size`` items whose costs add up to at most ``max_cost``.

    As in ``RunBatchesInThread``: an item that would push the batch over the budget
    starts the next one, and an item costlier than the whole budget goes alone.
    """
    if max_size < 1 or max_cost < 1:
        raise ValueError("max_size and max_cost must be >= 1")
    batch: list[T] = []
    total = 0
    for item in items:
        item_cost = cost(item)
        if batch and total + item_cost > max_cost:
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += item_cost
        if len(batch) >= max_size or total >= max_cost:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch
