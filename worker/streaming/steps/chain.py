"""chain: write a step chain front to back, in the order data flows.

Each step is built with the step after it, so a chain is naturally built back to front;
``chain`` takes one factory per step (``functools.partial(RunTask, function)``: the
step without its next step) in data-flow order and builds them from the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.streaming.types import ProcessingStep

StepFactory = Callable[[ProcessingStep[Any]], ProcessingStep[Any]]


def chain(*steps: StepFactory, end: ProcessingStep[Any]) -> ProcessingStep[Any]:
    """The first step of ``steps[0] → steps[1] → … → end``."""
    step = end
    for factory in reversed(steps):
        step = factory(step)
    return step
