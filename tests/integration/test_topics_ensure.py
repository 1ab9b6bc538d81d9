"""``guardstream topics ensure`` on the real broker: every worker topic, review included."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.commands.topics import ensure_worker_topics
from worker.config import Settings

pytestmark = pytest.mark.integration


def test_ensure_creates_the_review_topic_too(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    from kafka import KafkaAdminClient

    names = {kind: unique_name(kind) for kind in ("in", "out", "review", "dlq", "bank")}
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        input_topic=names["in"],
        output_topic=names["out"],
        review_topic=names["review"],
        dlq_topic=names["dlq"],
        hash_bank_topic=names["bank"],
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        created = ensure_worker_topics(settings, partitions=2, replication_factor=1)
        assert sorted(created) == sorted(names.values())
        assert set(names.values()) <= set(admin.list_topics())
        assert ensure_worker_topics(settings, partitions=2, replication_factor=1) == []
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()
