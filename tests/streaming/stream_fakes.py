"""Fakes for unit tests of worker.streaming (no broker)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kafka import TopicPartition

from worker.streaming.exceptions import MessageRejected
from worker.streaming.types import Lease, Message, Partition, ProcessingStep

T = TypeVar("T")

P0 = Partition("in", 0)
P1 = Partition("in", 1)


def msg(
    payload: Any, offset: int, partition: Partition = P0, lease: Lease | None = None
) -> Message[Any]:
    return Message(
        payload=payload,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000 + offset,
        key=b"k%d" % offset,
        value=b"v%d" % offset,
        headers=(("h", b"x"),),
        lease=lease,
    )


class CollectingStep(ProcessingStep[T], Generic[T]):
    """Terminal fake: records what arrives; can be told to reject."""

    def __init__(self) -> None:
        self.received: list[Message[T]] = []
        self.reject = False
        self.polls = 0
        self.closed = False
        self.joined: list[float | None] = []
        self.terminated = False

    def submit(self, message: Message[T]) -> None:
        if self.reject:
            raise MessageRejected
        self.received.append(message)

    def poll(self) -> None:
        self.polls += 1

    def close(self) -> None:
        self.closed = True

    def join(self, timeout: float | None = None) -> None:
        self.joined.append(timeout)

    def terminate(self) -> None:
        self.terminated = True

    @property
    def payloads(self) -> list[T]:
        return [m.payload for m in self.received]


class FakeFuture:
    def __init__(self) -> None:
        self.is_done = False
        self.exception: BaseException | None = None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def ack(self) -> None:
        self.is_done = True

    def fail(self, exc: BaseException) -> None:
        self.exception = exc
        self.is_done = True


@dataclass
class FakeProducer:
    """Records sends; futures resolve only when the test says so (or auto_ack)."""

    auto_ack: bool = False
    sent: list[tuple[str, dict[str, Any], FakeFuture]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    fail_on: Callable[[str], BaseException | None] | None = None
    flushes: int = 0

    def send(self, topic: str, **kwargs: Any) -> FakeFuture:
        future = FakeFuture()
        if self.auto_ack:
            future.ack()
        self.sent.append((topic, kwargs, future))
        self.calls.append(f"send:{topic}")
        return future

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        self.calls.append("flush")
        for _, _, future in self.sent:
            if not future.is_done:
                future.ack()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_on is not None:
            exc = self.fail_on(name)
            if exc is not None:
                raise exc

    def init_transactions(self) -> None:
        self._call("init_transactions")

    def begin_transaction(self) -> None:
        self._call("begin_transaction")

    def send_offsets_to_transaction(self, offsets: dict[Any, Any], group_metadata: Any) -> None:
        self.offsets = {tp: om.offset for tp, om in offsets.items()}
        self.group_metadata = group_metadata
        self._call("send_offsets_to_transaction")

    def commit_transaction(self) -> None:
        self._call("commit_transaction")

    def abort_transaction(self) -> None:
        self._call("abort_transaction")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")

    def ack_all(self) -> None:
        for _, _, future in self.sent:
            if not future.is_done:
                future.ack()


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeConsumer:
    """Enough of KafkaConsumer for StreamProcessor unit tests.

    ``script`` is a list of poll results; each item is either a list of
    FakeRecords or a callable run inside poll() (to simulate a rebalance
    callback, which kafka-python runs while the loop is blocked in poll()).
    """

    def __init__(self, partitions: Iterable[TopicPartition]) -> None:
        self._assigned = set(partitions)
        self._paused: set[TopicPartition] = set()
        self.script: list[Any] = []
        self.listener: Any = None
        self.commits: list[dict[Any, int]] = []
        self.closed_with: dict[str, Any] | None = None
        self.polls = 0
        self.pause_calls = 0
        self.resume_calls = 0

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.pause_calls += 1
        self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.resume_calls += 1
        self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def revoke(self, *tps: TopicPartition) -> None:
        self._assigned.difference_update(tps)
        self._paused.difference_update(tps)
        self.listener.on_partitions_revoked(set(tps))

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[FakeRecord]]:
        self.polls += 1
        if not self.script:
            return {}
        item = self.script[0]
        if callable(item):
            self.script.pop(0)
            item()
            return {}
        out: dict[TopicPartition, list[FakeRecord]] = {}
        rest = []
        for record in item:
            tp = TopicPartition(record.topic, record.partition)
            if tp in self._paused:
                rest.append(record)
            else:
                out.setdefault(tp, []).append(record)
        if rest:
            self.script[0] = rest
        else:
            self.script.pop(0)
        return out

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        self.commits.append({(tp.topic, tp.partition): om.offset for tp, om in offsets.items()})

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed_with = {"autocommit": autocommit}
