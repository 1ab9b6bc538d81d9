"""The Kafka driver seam: what the worker, ``topics``, ``replay`` and the benchmarks use.

The vocabulary is kafka-python's, the default driver (always installed): partitions are
``kafka.TopicPartition`` (``.topic``, ``.partition``), offsets to commit are
``{TopicPartition: OffsetAndMetadata}``, ``poll()`` returns ``{TopicPartition: [record]}``
whose records have ``topic``, ``partition``, ``offset``, ``timestamp`` (ms), ``key``,
``value`` and ``headers`` (``[(str, bytes)]``), and ``send()`` returns a future with
``is_done``, ``failed()`` and ``exception`` (``worker.streaming.types.RecordFuture``). A
raw ``KafkaConsumer``/``KafkaProducer`` is therefore a driver client as it is; another
library is adapted to this surface in its own module (``drivers.confluent``), so the
processor, the steps and the offset tracking never learn which library runs.

Admin operations (``topics ensure``, the lab) go through ``KafkaDriver.admin``, a
driver-neutral ``DriverAdmin`` in the worker's own terms (``TopicSpec``, topic names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from worker.streaming.kafka_config import Assignment, KafkaConnection
from worker.streaming.topics import TopicSpec

Isolation = Literal["read_uncommitted", "read_committed"]


class RebalanceListener(Protocol):
    """``worker.streaming.rebalance.RebalanceEvents`` (kafka-python's listener names)."""

    def on_partitions_assigned(self, assigned: Iterable[Any]) -> None: ...
    def on_partitions_revoked(self, revoked: Iterable[Any]) -> None: ...
    def on_partitions_lost(self, lost: Iterable[Any]) -> None: ...


class DriverConsumer(Protocol):
    """The consumer surface ``StreamProcessor``, ``kafka_commit`` and ``Worker`` use.

    ``rebalance_callbacks_in_poll_thread`` (optional, default False): the driver calls
    the listener inside ``poll()`` in the polling thread, where committing is allowed,
    so the processor handles a revocation before the partitions are given up.
    """

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None: ...
    def poll(self, timeout_ms: int = ...) -> Mapping[Any, Sequence[Any]]: ...
    def assignment(self) -> set[Any]: ...
    def pause(self, *partitions: Any) -> None: ...
    def resume(self, *partitions: Any) -> None: ...
    def paused(self) -> set[Any]: ...
    def commit(self, offsets: Mapping[Any, Any], timeout_ms: int = ...) -> None: ...
    def group_metadata(self) -> Any: ...
    def position(self, partition: Any, timeout_ms: int = ...) -> int | None: ...
    def highwater(self, partition: Any) -> int | None: ...
    def close(self, autocommit: bool = ..., timeout_ms: int = ...) -> None: ...


class AssignedConsumer(Protocol):
    """What ``replay`` adds to ``DriverConsumer``: a consumer assigned its partitions
    (no subscription; its group, if any, only stores how far it got). ``config["group_id"]``
    is None for a consumer without a group."""

    config: Mapping[str, Any]

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def assign(self, partitions: Sequence[Any]) -> None: ...
    def end_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]: ...
    def committed(self, partition: Any) -> int | None: ...
    def seek(self, partition: Any, offset: int) -> None: ...
    def seek_to_beginning(self, *partitions: Any) -> None: ...


class DriverProducer(Protocol):
    """The producer surface ``Produce``, ``TransactionalProduceAndCommit`` and replay use."""

    def send(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        headers: list[tuple[str, bytes]] | None = ...,
        partition: int | None = ...,
    ) -> Any: ...
    def flush(self, timeout: float | None = ...) -> None: ...
    def init_transactions(self) -> None: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(
        self, offsets: Mapping[Any, Any], group_metadata: Any
    ) -> None: ...
    def commit_transaction(self) -> None: ...
    def abort_transaction(self) -> None: ...
    def close(self, timeout: float | None = ...) -> None: ...


class DriverAdmin(Protocol):
    """The admin surface ``ensure_topics`` and the lab use."""

    def list_topics(self) -> set[str]: ...
    def create_topics(self, specs: Sequence[TopicSpec], timeout_ms: int) -> list[str]:
        """Create ``specs``; return the names this call created. A topic that exists
        already (created concurrently) is not among them and is no error; any other
        failure raises. Returns once every topic of ``specs`` has leaders."""
        ...

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]: ...
    def delete_topics(self, topics: Sequence[str]) -> None: ...
    def close(self) -> None: ...


class Watchdog(Protocol):
    """``StallWatchdog``'s surface; drivers whose calls cannot hang return a no-op one."""

    error: BaseException | None

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def guard(self, what: str, timeout_s: float) -> Any: ...


class KafkaDriver(Protocol):
    """One client library: builds the clients and answers what only it knows."""

    name: str

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
        """A ``DriverConsumer``, also an ``AssignedConsumer``; ``group_id=None``: no group
        (``replay --replay-group none``)."""
        ...

    def producer(
        self,
        conn: KafkaConnection,
        *,
        max_record_bytes: int | None = None,
        transactional_id: str | None = None,
        linger_ms: int = 5,
    ) -> Any: ...

    def admin(self, conn: KafkaConnection) -> DriverAdmin: ...

    def watchdog(self, consumer: Any, stall_timeout_s: float) -> Any: ...

    def broker_connected(self, consumer: Any) -> bool: ...
