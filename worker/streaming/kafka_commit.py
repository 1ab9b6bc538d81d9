"""kafka_commit: the at-least-once ``Commit`` callback over ``KafkaConsumer.commit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from worker.streaming.exceptions import CommitFailed
from worker.streaming.types import Commit, Partition
from worker.streaming.watchdog import StallWatchdog, guard


def kafka_commit(
    consumer: Any, *, watchdog: StallWatchdog | None = None, timeout_ms: int = 30_000
) -> Commit:
    """A ``Commit`` for ``CommitOffsets``: synchronous ``consumer.commit``.

    Must be called from the consumer loop's thread (never from a rebalance
    callback). Give it the processor's ``watchdog`` so that a commit blocked on a
    wedged client fails like a blocked poll. Group-membership races and retriable errors (broker unreachable,
    coordinator moving, timeouts) are mapped to ``CommitFailed``: logged and
    retried later by the step, so a broker restart does not stop the worker.
    Other errors, e.g. a fenced static member, propagate.
    """

    def commit(offsets: Mapping[Partition, int]) -> None:
        try:
            with guard(watchdog, "commit", timeout_ms / 1000):
                consumer.commit(
                    {
                        TopicPartition(p.topic, p.index): OffsetAndMetadata(o, "", -1)
                        for p, o in offsets.items()
                    },
                    timeout_ms=timeout_ms,
                )
        except (CommitFailedError, RebalanceInProgressError) as exc:
            raise CommitFailed(repr(exc)) from exc
        except KafkaError as exc:
            if not exc.retriable:
                raise
            raise CommitFailed(repr(exc)) from exc

    return commit
