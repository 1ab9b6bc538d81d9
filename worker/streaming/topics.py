"""Idempotent topic creation for the worker's topics (inputs, outputs, DLQ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:  # the drivers' surface names TopicSpec
    from worker.streaming.drivers.base import DriverAdmin

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=dict)
    """Topic configs, e.g. {"retention.ms": "604800000", "cleanup.policy": "delete"}."""


def ensure_topics(
    admin: DriverAdmin, specs: Sequence[TopicSpec], *, timeout_ms: int = 30_000
) -> list[str]:
    """Create the topics of ``specs`` that do not exist; return the names created.

    ``admin`` is a driver's admin (``KafkaDriver.admin``). Existing topics are left as
    they are (a partition count that differs is logged, not changed: changing
    partitions re-keys data and is an operator's decision). Losing a creation race to
    another worker is fine. Waits until the new topics have leaders, so producing to
    them right away works.
    """
    existing = admin.list_topics()
    missing = [s for s in specs if s.name not in existing]
    present = [s for s in specs if s.name in existing]
    if present:
        _warn_on_mismatch(admin, present)
    if not missing:
        return []
    created = admin.create_topics(missing, timeout_ms)
    for spec in missing:
        if spec.name not in created:
            log.info("topic created concurrently by someone else", topic=spec.name)
    log.info("topics created", topics=created)
    return created


def _warn_on_mismatch(admin: DriverAdmin, specs: Sequence[TopicSpec]) -> None:
    try:
        counts = admin.partition_counts([s.name for s in specs])
    except Exception as exc:  # informational only
        log.debug("describing topics failed", error=repr(exc))
        return
    for spec in specs:
        actual = counts.get(spec.name)
        if actual is not None and actual != spec.partitions:
            log.warning(
                "existing topic has a different partition count; left unchanged",
                topic=spec.name,
                expected=spec.partitions,
                actual=actual,
            )
