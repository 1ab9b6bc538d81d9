"""Core types: partitions, messages flowing through steps, the step protocol.

The layer is generic: a ``Message`` carries an arbitrary payload plus where it
came from (partition, offset) and the raw consumed record, so that any step can
build a dead letter that copies the input byte for byte.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
U = TypeVar("U")
TIn = TypeVar("TIn")
TOut = TypeVar("TOut")

#: Kafka headers as kafka-python gives and takes them, but immutable.
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    topic: str
    index: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.index}"


class Lease:
    """One assignment of one partition to this consumer.

    Every message carries the lease under which it was consumed. When the
    partition is revoked the lease is revoked, and every step drops messages
    whose lease is revoked: their offsets are no longer ours to commit and the
    new owner re-processes them. A partition that comes back later gets a *new*
    lease, so old in-flight work can never be mistaken for current work.
    """

    __slots__ = ("partition", "revoked")

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        # Read for every message at every step: a plain attribute, not a property.
        # Only revoke() sets it (a plain bool store: atomic under the GIL, read by
        # worker threads).
        self.revoked = False

    def revoke(self) -> None:
        self.revoked = True

    def __repr__(self) -> str:
        return f"Lease({self.partition}, revoked={self.revoked})"


@dataclass(slots=True)
class Message(Generic[T]):
    """A payload plus the identity and raw bytes of the record it came from.

    Immutable by convention (steps forward ``replace``'s new message, never change one):
    not ``frozen``, because every step builds one per event and a frozen dataclass's
    ``__init__`` (``object.__setattr__`` per field) costs ~5× a plain one.
    """

    payload: T
    partition: Partition
    offset: int
    timestamp: int
    """Record timestamp, ms since the epoch."""
    key: bytes | None = None
    value: bytes | None = None
    headers: Headers = ()
    lease: Lease | None = None
    """None for messages built by hand (tests): never considered revoked."""

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message is done."""
        return self.offset + 1

    @property
    def revoked(self) -> bool:
        lease = self.lease
        return lease is not None and lease.revoked

    def replace(self, payload: U) -> Message[U]:
        """Same record, new payload (what a transforming step forwards)."""
        return Message(
            payload,
            self.partition,
            self.offset,
            self.timestamp,
            self.key,
            self.value,
            self.headers,
            self.lease,
        )


@dataclass(slots=True)
class OutgoingRecord:
    """A record to produce. ``partition=None`` lets the producer's partitioner pick by key.

    Immutable by convention, not ``frozen``: one is built per verdict (see ``Message``).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None


#: Commit callback: partition -> next offset to consume (last done offset + 1).
Commit = Callable[[Mapping[Partition, int]], None]


class ProcessingStep(ABC, Generic[T]):
    """One stage of the pipeline (modelled on getsentry/arroyo).

    Protocol, all called from the consumer loop's thread:

    * ``submit(message)``: hand over a message; raise ``MessageRejected`` when
      full (the caller retries the same message later) - never block.
    * ``poll()``: make progress without blocking: forward finished work to the
      next step, then call ``next_step.poll()``.
    * ``close()``: no more ``submit`` calls will come.
    * ``join(timeout)``: after ``close()``, finish in-flight work (as far as the
      timeout allows), forward it, then ``close()`` and ``join()`` the next step
      with the remaining time.
    * ``terminate()``: abandon in-flight work at once (crash path); nothing more
      is forwarded, so nothing more is committed.
    """

    @abstractmethod
    def submit(self, message: Message[T]) -> None: ...

    @abstractmethod
    def poll(self) -> None: ...

    @abstractmethod
    def join(self, timeout: float | None = None) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def terminate(self) -> None:
        """Default: same as close(); steps that own threads override it."""
        self.close()


class RecordFuture(Protocol):
    """What ``KafkaProducer.send`` returns (kafka.future.Future), as used here."""

    is_done: bool
    exception: BaseException | None

    def failed(self) -> bool: ...


class Producer(Protocol):
    """The subset of ``kafka.KafkaProducer`` the steps use (fakes implement it in tests)."""

    def send(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        headers: list[tuple[str, bytes]] | None = ...,
        partition: int | None = ...,
    ) -> RecordFuture: ...

    def flush(self, timeout: float | None = ...) -> None: ...


def send_record(producer: Producer | Any, record: OutgoingRecord) -> RecordFuture:
    """Send one OutgoingRecord; kafka-python wants headers as a list."""
    future: RecordFuture = producer.send(
        record.topic,
        value=record.value,
        key=record.key,
        headers=list(record.headers),
        partition=record.partition,
    )
    return future


def records_of(payload: Sequence[OutgoingRecord]) -> Sequence[OutgoingRecord]:
    """Identity with a type check: produce steps accept only OutgoingRecords."""
    for record in payload:
        if not isinstance(record, OutgoingRecord):
            raise TypeError(f"expected OutgoingRecord, got {type(record).__name__}")
    return payload
