"""Idempotent topic creation for the worker's topics (inputs, outputs, DLQ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from kafka.errors import TopicAlreadyExistsError, for_code

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=dict)
    """Topic configs, e.g. {"retention.ms": "604800000", "cleanup.policy": "delete"}."""


def ensure_topics(admin: Any, specs: Sequence[TopicSpec], *, timeout_ms: int = 30_000) -> list[str]:
    """Create the topics of ``specs`` that do not exist; return the names created.

    ``admin`` is a ``kafka.KafkaAdminClient``. Existing topics are left as they
    are (a partition count or config that differs is logged, not changed:
    changing partitions re-keys data and is an operator's decision). Losing a
    creation race to another worker is fine. Waits until the new topics have
    leaders, so producing to them right away works.
    """
    existing = set(admin.list_topics())
    missing = [s for s in specs if s.name not in existing]
    present = [s.name for s in specs if s.name in existing]
    if present:
        _warn_on_mismatch(admin, [s for s in specs if s.name in existing])
    if not missing:
        return []
    response = admin.create_topics(
        {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": s.replication_factor,
                "configs": dict(s.configs),
            }
            for s in missing
        },
        timeout_ms=timeout_ms,
        raise_errors=False,
    )
    created: list[str] = []
    for topic in response["topics"]:
        error = for_code(topic["error_code"])
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif error is TopicAlreadyExistsError:
            log.info("topic created concurrently by someone else", topic=topic["name"])
        else:
            raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
    admin.wait_for_topics([s.name for s in missing], timeout_ms=timeout_ms)
    log.info("topics created", topics=created)
    return created


def _warn_on_mismatch(admin: Any, specs: Sequence[TopicSpec]) -> None:
    try:
        described = {t["name"]: t for t in admin.describe_topics([s.name for s in specs])}
    except Exception as exc:  # informational only
        log.debug("describe_topics failed", error=repr(exc))
        return
    for spec in specs:
        info = described.get(spec.name)
        if info is not None and len(info.get("partitions") or []) != spec.partitions:
            log.warning(
                "existing topic has a different partition count; left unchanged",
                topic=spec.name,
                expected=spec.partitions,
                actual=len(info.get("partitions") or []),
            )
