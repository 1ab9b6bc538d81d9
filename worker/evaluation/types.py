"""The values of an evaluation: labelled lines in, one record per event out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Label:
    """What a person said about an event: unsafe or not, and (optionally) which categories."""

    unsafe: bool
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelledLine:
    """One input line that parsed: its bytes go to the worker's decode stage unchanged
    (the contract ignores the extra top-level ``label`` field)."""

    line: int  # 1-based line number in the input file
    value: bytes
    label: Label


@dataclass(frozen=True)
class SkippedLine:
    """A line that is not a labelled event; it is reported and counted, never scored."""

    line: int
    reason: str


@dataclass(frozen=True)
class DeadLetteredEvent:
    """An event the worker would have dead-lettered, at the stage it failed."""

    line: int
    event_id: str | None
    stage: str
    error_class: str
    message: str


@dataclass(frozen=True)
class ScoredEvent:
    """One event's verdict next to its label: a row of ``scores.jsonl``.

    ``predicted_unsafe``: ``unsafe_score`` at or above the threshold in force;
    ``categories``: the categories the verdict lists; ``category_scores``: the verdict's
    (per active key, the maximum over the images). ``action``, ``would_action`` (observe
    mode) and ``review`` (``band`` | ``audit``) are the policy's, None without a policy file.
    """

    line: int
    event_id: str
    label: Label
    unsafe_score: float
    predicted_unsafe: bool
    categories: tuple[str, ...]
    category_scores: Mapping[str, float] = field(default_factory=dict)
    action: str | None = None
    would_action: str | None = None
    review: str | None = None
