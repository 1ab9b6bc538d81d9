"""A kafka-python ``ClusterMetadata`` stand-in with fixed partitions: what a producer's
partitioner reads, without a broker (``bench steps`` times partitioners on it)."""

from __future__ import annotations

from collections.abc import Collection, Mapping


class StaticCluster:
    def __init__(
        self,
        partitions: Mapping[str, Collection[int]],
        available: Mapping[str, Collection[int]] | None = None,
        internal_topics: Collection[str] = (),
    ) -> None:
        self._partitions = {topic: set(ids) for topic, ids in partitions.items()}
        # Partitions with a known leader; all of them unless given.
        self._available = (
            {topic: set(ids) for topic, ids in available.items()}
            if available is not None
            else self._partitions
        )
        self.internal_topics = set(internal_topics)

    def topics(self) -> set[str]:
        return set(self._partitions) - self.internal_topics

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        ids = self._partitions.get(topic)
        return set(ids) if ids is not None else None

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        ids = self._available.get(topic)
        return set(ids) if ids is not None else None
