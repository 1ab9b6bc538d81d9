"""The confluent driver's admin: ``confluent_kafka.admin.AdminClient`` with the driver
admin surface (``base.DriverAdmin``).

librdkafka's admin calls return a future per topic; a topic's metadata (partitions and
their leaders) comes from ``list_topics``, asked per topic so that a broker full of
other topics is not listed each time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from worker.streaming.topics import TopicSpec


class ConfluentAdmin:
    def __init__(self, config: Mapping[str, Any], *, request_timeout_s: float) -> None:
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        self._ck = confluent_kafka
        self._timeout_s = request_timeout_s
        self._admin = AdminClient(dict(config))

    def list_topics(self) -> set[str]:
        return set(self._admin.list_topics(timeout=self._timeout_s).topics)

    def create_topics(self, specs: Sequence[TopicSpec], timeout_ms: int) -> list[str]:
        from confluent_kafka.admin import NewTopic

        new_topics = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.configs))
            for s in specs
        ]
        timeout_s = timeout_ms / 1000
        futures = self._admin.create_topics(
            new_topics, operation_timeout=timeout_s, request_timeout=timeout_s
        )
        created: list[str] = []
        for name, future in futures.items():
            try:
                future.result()
            except self._ck.KafkaException as exc:
                if exc.args[0].code() != self._ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            else:
                created.append(name)
        self._wait_for_leaders([s.name for s in specs], timeout_s)
        return created

    def _wait_for_leaders(self, names: Sequence[str], timeout_s: float) -> None:
        """Until every partition of ``names`` has a leader: a topic just created is not
        in every broker's metadata at once, and producing to it would fail."""
        deadline = time.monotonic() + timeout_s
        pending = list(names)
        while pending:
            pending = [name for name in pending if not self._has_leaders(name)]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topics without leaders after {timeout_s:g}s: {pending}")
            time.sleep(0.1)

    def _has_leaders(self, name: str) -> bool:
        info = self._topic(name)
        if info is None or not info.partitions:
            return False
        return all(p.error is None and p.leader >= 0 for p in info.partitions.values())

    def _topic(self, name: str) -> Any:
        info = self._admin.list_topics(name, timeout=self._timeout_s).topics.get(name)
        return None if info is None or info.error is not None else info

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in topics:
            info = self._topic(name)
            if info is not None:
                counts[name] = len(info.partitions)
        return counts

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        timeout_s = self._timeout_s
        futures = self._admin.delete_topics(
            list(topics), operation_timeout=timeout_s, request_timeout=timeout_s
        )
        for future in futures.values():
            future.result()

    def close(self) -> None:
        # AdminClient has no close(): librdkafka's handle goes with the object.
        pass
