"""``guardstream topics ensure`` on the real broker: every worker topic, review included,
through each driver's admin (checked with kafka-python's own client)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.commands.topics import DLQ_RETENTION_MS, ensure_worker_topics
from worker.config import Settings

pytestmark = pytest.mark.integration


def test_ensure_creates_the_review_topic_too(
    kafka_bootstrap: str, unique_name: Callable[[str], str], kafka_driver: str
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    names = {kind: unique_name(kind) for kind in ("in", "out", "review", "dlq", "bank")}
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_driver=kafka_driver,
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
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, names[kind]) for kind in ("dlq", "bank")]
        )["topic"]
        assert described[names["dlq"]]["retention.ms"]["value"] == str(DLQ_RETENTION_MS)
        assert described[names["bank"]]["cleanup.policy"]["value"] == "compact"
        partitions = {
            t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(names.values()))
        }
        assert partitions == {**dict.fromkeys(names.values(), 2), names["bank"]: 1}
        assert ensure_worker_topics(settings, partitions=2, replication_factor=1) == []
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()
