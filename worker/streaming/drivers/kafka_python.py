"""The kafka-python driver (the default): kafka-python's clients as they are.

What is kafka-python specific stays with it: the stall watchdog (its blocking calls wait
for the I/O thread without a timeout, ``worker.streaming.watchdog``) and the two
workarounds the processor applies after each ``poll()`` (``kafka_compat``; no-ops on
other clients).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.streaming.drivers.base import Isolation
from worker.streaming.kafka_config import (
    Assignment,
    KafkaConnection,
    admin_kwargs,
    consumer_kwargs,
    producer_kwargs,
)
from worker.streaming.topics import TopicSpec
from worker.streaming.watchdog import StallWatchdog


class KafkaPythonAdmin:
    """``kafka.KafkaAdminClient`` with the driver admin surface."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def list_topics(self) -> set[str]:
        return set(self._client.list_topics())

    def create_topics(self, specs: Sequence[TopicSpec], timeout_ms: int) -> list[str]:
        from kafka.errors import TopicAlreadyExistsError, for_code

        response = self._client.create_topics(
            {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "configs": dict(s.configs),
                }
                for s in specs
            },
            timeout_ms=timeout_ms,
            raise_errors=False,
        )
        created: list[str] = []
        for topic in response["topics"]:
            error = for_code(topic["error_code"])
            if topic["error_code"] == 0:
                created.append(topic["name"])
            elif error is not TopicAlreadyExistsError:
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        self._client.wait_for_topics([s.name for s in specs], timeout_ms=timeout_ms)
        return created

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        described = self._client.describe_topics(list(topics))
        return {t["name"]: len(t.get("partitions") or []) for t in described}

    def delete_topics(self, topics: Sequence[str]) -> None:
        self._client.delete_topics(list(topics))

    def close(self) -> None:
        self._client.close()


class KafkaPythonDriver:
    name = "kafka-python"

    def consumer(
        self,
        conn: KafkaConnection,
        *,
        group_id: str | None,
        group_instance_id: str | None = None,
        isolation_level: Isolation = "read_uncommitted",
        max_poll_records: int = 256,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 45_000,
        heartbeat_interval_ms: int | None = None,
        assignment: Assignment = "cooperative-sticky",
        client_id: str | None = None,
    ) -> Any:
        from kafka import KafkaConsumer

        overrides = {"client_id": client_id} if client_id is not None else {}
        return KafkaConsumer(
            **consumer_kwargs(
                conn,
                group_id=group_id,
                group_instance_id=group_instance_id,
                isolation_level=isolation_level,
                max_poll_records=max_poll_records,
                max_poll_interval_ms=max_poll_interval_ms,
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=heartbeat_interval_ms,
                assignment=assignment,
                **overrides,
            )
        )

    def producer(
        self,
        conn: KafkaConnection,
        *,
        max_record_bytes: int | None = None,
        transactional_id: str | None = None,
        linger_ms: int = 5,
    ) -> Any:
        from kafka import KafkaProducer

        overrides: dict[str, Any] = (
            {"max_request_size": max_record_bytes} if max_record_bytes else {}
        )
        return KafkaProducer(
            **producer_kwargs(
                conn, linger_ms=linger_ms, transactional_id=transactional_id, **overrides
            )
        )

    def admin(self, conn: KafkaConnection) -> KafkaPythonAdmin:
        from kafka import KafkaAdminClient

        return KafkaPythonAdmin(KafkaAdminClient(**admin_kwargs(conn)))

    def watchdog(self, consumer: Any, stall_timeout_s: float) -> StallWatchdog:
        return StallWatchdog(consumer, stall_timeout_s)

    def broker_connected(self, consumer: Any) -> bool:
        # kafka-python has no public "is any broker connected" call.
        try:
            client = consumer._client
            return any(client.connected(broker.node_id) for broker in client.cluster.brokers())
        except Exception:
            return False
