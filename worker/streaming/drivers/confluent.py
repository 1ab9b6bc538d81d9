"""The confluent driver: confluent-kafka (librdkafka) adapted to the driver surface.

librdkafka facts this adapter is built on:

* Protocol work (fetching, heartbeats, produce batching, acks) runs in librdkafka's C
  threads, outside the GIL; Python sees finished work only when it calls ``poll()``/
  ``consume()`` (consumer) or ``poll()``/``flush()`` (producer delivery reports).
* Rebalance callbacks (``on_assign``/``on_revoke``/``on_lost``) run *inside*
  ``consume()``, in the calling thread, where committing is allowed. The adapter hands
  them to the processor's listener there (``rebalance_callbacks_in_poll_thread``), so
  a revocation's finished prefix is committed before ``incremental_unassign`` gives
  the partitions up. With ``cooperative-sticky`` the callbacks get only the partitions
  that move (incremental assign/unassign).
* Every call returns within its timeout: there is no I/O-thread hand-off that can wait
  forever, so kafka-python's stall watchdog has nothing to watch. Its intent (a wedged
  client must not look alive) is librdkafka's own: ``max.poll.interval.ms`` (the member
  leaves the group when the loop stops polling), ``session.timeout.ms`` (heartbeats from
  its own thread), ``socket.timeout.ms`` (every request, including the synchronous
  commit) and ``message.timeout.ms``/``delivery.timeout.ms`` (a send fails instead of
  waiting forever); fatal errors (e.g. a fenced static member) raise from ``poll()``.
* A consumed message may be an error event (``Message.error()``): partition EOF is
  skipped, fatal errors raise, the others are logged (librdkafka retries them itself).
* ``seek()`` works only on a partition librdkafka already fetches; an assigned
  consumer's start offsets (``replay``) go into the assignment until the first poll.
  ``position()`` is unknown until a message arrives, so after a seek it is the offset
  sought, as kafka-python's is.

Longer than the project's ~400 lines on purpose: one module per driver (faust's
``transport/drivers/``), its consumer, producer and send futures side by side (the
admin client is ``drivers.confluent_admin``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from kafka import TopicPartition

from worker.streaming.drivers.base import Isolation, RebalanceListener
from worker.streaming.drivers.confluent_admin import ConfluentAdmin
from worker.streaming.drivers.confluent_config import (
    common_config,
    consumer_config,
    producer_config,
)
from worker.streaming.exceptions import CommitFailed, TransactionStalled
from worker.streaming.kafka_config import Assignment, KafkaConnection

log = structlog.get_logger(__name__)

MISSING = "KAFKA_DRIVER=confluent needs confluent-kafka: pip install 'guardstream[confluent]'"

#: Bound of the metadata and offset look-ups (librdkafka's default is to wait forever).
REQUEST_TIMEOUT_S = 30.0


def _ck() -> Any:
    try:
        import confluent_kafka
    except ImportError as exc:
        raise ImportError(MISSING) from exc
    return confluent_kafka


class Record:
    """A consumed record with kafka-python's field names."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, message: Any) -> None:
        self.topic: str = message.topic()
        self.partition: int = message.partition()
        self.offset: int = message.offset()
        self.timestamp: int = message.timestamp()[1]
        self.key: bytes | None = message.key()
        self.value: bytes | None = message.value()
        self.headers: list[tuple[str, bytes]] = message.headers() or []


class ConfluentConsumer:
    """``confluent_kafka.Consumer`` with the driver consumer surface."""

    rebalance_callbacks_in_poll_thread = True

    def __init__(self, config: Mapping[str, Any], max_poll_records: int) -> None:
        ck = _ck()
        self._ck = ck
        self._max_poll_records = max_poll_records
        self._paused: set[TopicPartition] = set()
        self._listener: RebalanceListener | None = None
        self._closing = False
        self._brokers_up = False
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        # The assignment as this wrapper made it (only the rebalance callbacks and
        # assign() change it): librdkafka's assignment() is a round trip to its main
        # thread, ~1 ms with the GIL busy, and the loop asks once per poll.
        self._assigned: set[TopicPartition] = set()
        # Incremental assign/unassign for the cooperative protocol, full ones for eager.
        self._cooperative = config.get("partition.assignment.strategy") == "cooperative-sticky"
        # An assigned consumer's start offsets until its first poll, and offsets sought
        # and not consumed from yet (see the module docstring).
        self._start: dict[TopicPartition, int] | None = None
        self._sought: dict[TopicPartition, int] = {}
        native = {**config, "error_cb": self._on_error, "stats_cb": self._on_stats}
        group_id = config.get("group.id")
        if group_id is None:
            # librdkafka wants a group.id even when assigning; this one is never joined
            # (no subscribe) and never committed to.
            native["group.id"] = f"guardstream-no-group-{uuid.uuid4().hex}"
        self._consumer = ck.Consumer(native)
        self.config = {"group_id": group_id}

    # --- callbacks (all run inside poll(), in the polling thread) ---------------

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            raise self._ck.KafkaException(error)
        log.warning("kafka client error", error=error.str(), code=error.name())

    def _on_stats(self, stats_json: str) -> None:
        brokers = json.loads(stats_json).get("brokers", {})
        self._brokers_up = any(
            b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers.values()
        )

    def _rebalance(self, kind: str, partitions: list[Any]) -> None:
        tps = [self._tp(p.topic, p.partition) for p in partitions]
        cooperative = self._cooperative
        if kind == "assigned":
            if cooperative:
                self._consumer.incremental_assign(partitions)
            else:
                self._consumer.assign(partitions)
                self._assigned.clear()
            self._assigned.update(tps)
        # Revoked: the listener (the processor) commits the finished prefix first,
        # then the partitions are given up. Closing: nothing more is committed.
        if self._listener is not None and not self._closing:
            {
                "assigned": self._listener.on_partitions_assigned,
                "revoked": self._listener.on_partitions_revoked,
                "lost": self._listener.on_partitions_lost,
            }[kind](set(tps))
        if kind != "assigned":
            self._paused.difference_update(tps)
            if cooperative:
                self._consumer.incremental_unassign(partitions)
                self._assigned.difference_update(tps)
            else:
                self._consumer.unassign()
                self._assigned.clear()

    # --- the driver surface ------------------------------------------------------

    def _tp(self, topic: str, partition: int) -> TopicPartition:
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[(topic, partition)] = TopicPartition(topic, partition)
        return tp

    def _native(self, tps: Iterable[Any], offsets: Mapping[Any, int] | None = None) -> list[Any]:
        make = self._ck.TopicPartition
        if offsets is None:
            return [make(tp.topic, tp.partition) for tp in tps]
        return [make(tp.topic, tp.partition, offsets[tp]) for tp in tps]

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self._listener = listener
        self._consumer.subscribe(
            list(topics),
            on_assign=lambda _c, ps: self._rebalance("assigned", ps),
            on_revoke=lambda _c, ps: self._rebalance("revoked", ps),
            on_lost=lambda _c, ps: self._rebalance("lost", ps),
        )

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        """What is fetched already, up to ``max_poll_records``, at once; waits up to
        ``timeout_ms`` only while nothing is (kafka-python's ``poll``). librdkafka's
        ``consume(n, timeout)`` waits until it has ``n`` messages or the timeout passed:
        asked for 256 with 150 fetched, the loop would sit idle for the whole timeout."""
        self._start = None
        consume = self._consumer.consume
        messages = consume(self._max_poll_records, 0)
        if not messages and timeout_ms > 0:
            messages = consume(1, timeout_ms / 1000)
            if messages and self._max_poll_records > 1:
                messages += consume(self._max_poll_records - 1, 0)
        out: dict[TopicPartition, list[Record]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._consume_error(error)
                continue
            tp = self._tp(message.topic(), message.partition())
            batch = out.get(tp)
            if batch is None:
                batch = out[tp] = []
            batch.append(Record(message))
        if self._sought:
            for tp in out:
                self._sought.pop(tp, None)
        return out

    def _consume_error(self, error: Any) -> None:
        if error.code() == self._ck.KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise self._ck.KafkaException(error)
        log.warning("consume error", error=error.str(), code=error.name())

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def pause(self, *tps: Any) -> None:
        self._consumer.pause(self._native(tps))
        self._paused.update(self._tp(tp.topic, tp.partition) for tp in tps)

    def resume(self, *tps: Any) -> None:
        self._consumer.resume(self._native(tps))
        self._paused.difference_update(self._tp(tp.topic, tp.partition) for tp in tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def commit(self, offsets: Mapping[Any, Any], timeout_ms: int = 30_000) -> None:
        """Synchronous commit of ``{TopicPartition: OffsetAndMetadata}`` (or ints).

        Bounded by librdkafka's ``socket.timeout.ms`` (no timeout argument). Group races
        and retriable errors become ``CommitFailed`` (retried later), like kafka-python's;
        fatal ones propagate."""
        plain = {tp: getattr(o, "offset", o) for tp, o in offsets.items()}
        try:
            results = self._consumer.commit(offsets=self._native(plain, plain), asynchronous=False)
        except self._ck.KafkaException as exc:
            error = exc.args[0]
            if self._commit_retriable(error):
                raise CommitFailed(f"{error.name()}: {error.str()}") from exc
            raise
        for result in results or ():
            if result.error is not None:
                raise CommitFailed(f"{result.topic}/{result.partition}: {result.error}")

    def _commit_retriable(self, error: Any) -> bool:
        if error.fatal():
            return False
        codes = self._ck.KafkaError
        group_races = {
            codes.REBALANCE_IN_PROGRESS,
            codes.ILLEGAL_GENERATION,
            codes.UNKNOWN_MEMBER_ID,
            codes._NO_OFFSET,
        }
        return bool(error.retriable()) or error.code() in group_races

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def member_id(self) -> str | None:
        return self._consumer.memberid()

    def position(self, tp: Any, timeout_ms: int = 0) -> int | None:
        sought = self._sought.get(self._tp(tp.topic, tp.partition))
        if sought is not None:
            return sought
        [result] = self._consumer.position(self._native([tp]))
        return result.offset if result.offset >= 0 else None

    def highwater(self, tp: Any) -> int | None:
        _low, high = self._consumer.get_watermark_offsets(self._native([tp])[0], cached=True)
        return high if high >= 0 else None

    def broker_connected(self) -> bool:
        return self._brokers_up

    # --- an assigned consumer (``replay``: assign, not subscribe) -----------------

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        info = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
        if info is None or info.error is not None:
            return None
        return set(info.partitions)

    def assign(self, tps: Sequence[Any]) -> None:
        # OFFSET_STORED: the group's committed offset, else auto.offset.reset.
        self._start = {self._tp(tp.topic, tp.partition): self._ck.OFFSET_STORED for tp in tps}
        self._sought.clear()
        self._consumer.assign(self._native(self._start, self._start))
        self._assigned = set(self._start)

    def _watermarks(self, tp: Any) -> tuple[int, int]:
        native = self._native([tp])[0]
        low, high = self._consumer.get_watermark_offsets(
            native, timeout=REQUEST_TIMEOUT_S, cached=False
        )
        return low, high

    def beginning_offsets(self, tps: Sequence[Any]) -> dict[TopicPartition, int]:
        return {self._tp(tp.topic, tp.partition): self._watermarks(tp)[0] for tp in tps}

    def end_offsets(self, tps: Sequence[Any]) -> dict[TopicPartition, int]:
        return {self._tp(tp.topic, tp.partition): self._watermarks(tp)[1] for tp in tps}

    def committed(self, tp: Any) -> int | None:
        [result] = self._consumer.committed(self._native([tp]), timeout=REQUEST_TIMEOUT_S)
        return result.offset if result.offset >= 0 else None

    def seek(self, tp: Any, offset: int) -> None:
        key = self._tp(tp.topic, tp.partition)
        if self._start is not None:  # not fetched yet: librdkafka cannot seek it
            self._start[key] = offset
            self._consumer.assign(self._native(self._start, self._start))
        else:
            self._consumer.seek(self._ck.TopicPartition(key.topic, key.partition, offset))
        self._sought[key] = offset

    def seek_to_beginning(self, *tps: Any) -> None:
        # A concrete offset rather than OFFSET_BEGINNING, so that position() knows it.
        for tp, low in self.beginning_offsets(tps).items():
            self.seek(tp, low)

    def close(self, autocommit: bool = False, timeout_ms: int = 10_000) -> None:
        # Offsets are committed explicitly (auto-commit is off): close() leaves the group
        # (a static member does not) and must not commit on the revocation it triggers.
        self._closing = True
        self._consumer.close()


class DeliveryFuture:
    """What ``send()`` returns: resolved by librdkafka's delivery report.

    Reports are served by ``Producer.poll()``; asking an unresolved future serves them
    (non-blocking), so the steps need not know that librdkafka must be polled."""

    __slots__ = ("_done", "_producer", "exception")

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._done = False
        self.exception: BaseException | None = None

    def _report(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.exception = _ck().KafkaException(error)
        self._done = True

    @property
    def is_done(self) -> bool:
        if not self._done:
            self._producer.poll(0)
        return self._done

    def failed(self) -> bool:
        return self._done and self.exception is not None


class ConfluentProducer:
    """``confluent_kafka.Producer`` with the driver producer surface."""

    def __init__(self, config: Mapping[str, Any], *, max_block_s: float = 60.0) -> None:
        ck = _ck()
        self._ck = ck
        self._max_block_s = max_block_s
        self._producer = ck.Producer(dict(config))
        self._lock = threading.Lock()

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> DeliveryFuture:
        future = DeliveryFuture(self._producer)
        kwargs: dict[str, Any] = {"on_delivery": future._report}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        # Delivery reports are served when a future is asked (``is_done``) and while the
        # local queue is full, not after every send: the Produce step asks its oldest
        # futures on every poll, and a poll per record cost ~10 % of the per-event path.
        try:
            if len(kwargs) == 1:  # the common record: no headers, partition by key
                self._producer.produce(topic, value, key, on_delivery=future._report)
            else:
                self._producer.produce(topic, value, key, **kwargs)
            return future
        except BufferError:
            pass
        deadline = time.monotonic() + self._max_block_s
        while True:
            # Local queue full: serve delivery reports (which frees it), like
            # kafka-python blocking up to max_block_ms.
            self._producer.poll(0.05)
            try:
                self._producer.produce(topic, value, key, **kwargs)
                return future
            except BufferError:
                if time.monotonic() > deadline:
                    raise

    def flush(self, timeout: float | None = None) -> None:
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise TimeoutError(f"{left} records not acknowledged within {timeout}s")

    # librdkafka's transactional calls can wait forever: the default timeout is infinite,
    # and send_offsets_to_transaction ignores its timeout when the group coordinator goes
    # away mid-call (librdkafka #5456, #5511: a broker restart in the fault suite). A call
    # that cannot finish must not wedge a worker that looks alive: each one runs with a
    # deadline (kafka-python's max_block_ms) and raises when it passes; the transaction
    # is then aborted (or fenced by the restarted worker) and the processor stops.

    def _bounded(self, what: str, call: Any, *args: Any) -> None:
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                call(*args, self._max_block_s)
                outcome.append(None)
            except BaseException as exc:  # re-raised in the calling thread
                outcome.append(exc)

        thread = threading.Thread(target=run, name=f"txn-{what}", daemon=True)
        thread.start()
        thread.join(self._max_block_s + 5.0)
        if not outcome:
            raise TransactionStalled(f"{what} did not return within {self._max_block_s + 5.0:.0f}s")
        if outcome[0] is not None:
            raise outcome[0]

    def init_transactions(self) -> None:
        self._bounded("init_transactions", self._producer.init_transactions)

    def begin_transaction(self) -> None:
        self._producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: Mapping[Any, Any], group_metadata: Any) -> None:
        make = self._ck.TopicPartition
        positions = [
            make(tp.topic, tp.partition, getattr(o, "offset", o)) for tp, o in offsets.items()
        ]
        self._bounded(
            "send_offsets_to_transaction",
            self._producer.send_offsets_to_transaction,
            positions,
            group_metadata,
        )

    def commit_transaction(self) -> None:
        self._bounded("commit_transaction", self._producer.commit_transaction)

    def abort_transaction(self) -> None:
        self._bounded("abort_transaction", self._producer.abort_transaction)

    def close(self, timeout: float | None = None) -> None:
        # confluent-kafka's Producer has no close: deliver what is queued, then let go.
        self._producer.flush(-1 if timeout is None else timeout)


class _NoWatchdog:
    """librdkafka's calls return within their timeouts (see the module docstring)."""

    error: BaseException | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def guard(self, what: str, timeout_s: float) -> Any:
        from contextlib import nullcontext

        return nullcontext()


class ConfluentDriver:
    name = "confluent"

    def __init__(self) -> None:
        _ck()  # fail at start, with the one-line reason, when the extra is missing

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
    ) -> ConfluentConsumer:
        config = consumer_config(
            conn,
            group_id=group_id,
            group_instance_id=group_instance_id,
            isolation_level=isolation_level,
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            assignment=assignment,
            client_id=client_id,
        )
        return ConfluentConsumer(config, max_poll_records)

    def producer(
        self,
        conn: KafkaConnection,
        *,
        max_record_bytes: int | None = None,
        transactional_id: str | None = None,
        linger_ms: int = 5,
    ) -> ConfluentProducer:
        return ConfluentProducer(
            producer_config(
                conn,
                max_record_bytes=max_record_bytes,
                transactional_id=transactional_id,
                linger_ms=linger_ms,
            )
        )

    def admin(self, conn: KafkaConnection) -> ConfluentAdmin:
        return ConfluentAdmin(common_config(conn), request_timeout_s=REQUEST_TIMEOUT_S)

    def watchdog(self, consumer: Any, stall_timeout_s: float) -> _NoWatchdog:
        return _NoWatchdog()

    def broker_connected(self, consumer: Any) -> bool:
        return bool(consumer.broker_connected())
