"""End-to-end tests of worker.streaming against the real local broker.

They must hold on a loaded 2-core machine, so: no wall-clock upper bounds
(only event-based assertions, and lower bounds where a duration is the
precondition), generous internal deadlines after which a run is stopped and
the test fails with diagnostics, session timeouts that delayed heartbeats
cannot break, and a pytest timeout per test so a hang costs minutes, not ten.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, ProducerFencedError
from stream_fakes import CollectingStep

from schemas.dead_letter import REPLAY_COUNT, DeadLetterHeaders, ErrorStage
from worker.streaming.consumer import ProcessorStats, StreamProcessor
from worker.streaming.dead_letters import dead_letter_record
from worker.streaming.drivers import KafkaDriver
from worker.streaming.exceptions import KafkaClientStalled, MessageRejected, ProduceFailed
from worker.streaming.kafka_commit import kafka_commit
from worker.streaming.kafka_compat import rejoin_if_join_lost
from worker.streaming.kafka_config import KafkaConnection, consumer_kwargs, producer_kwargs
from worker.streaming.offsets import OffsetTracker
from worker.streaming.replay import replay_dead_letters
from worker.streaming.steps import (
    CommitOffsets,
    Produce,
    RunBatchesInThread,
    RunTask,
    RunTaskInThreads,
    TransactionalProduceAndCommit,
)
from worker.streaming.topics import TopicSpec, ensure_topics
from worker.streaming.types import Message, OutgoingRecord, Partition, ProcessingStep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: Internal deadline of one run: far above what a loaded machine needs, below
#: the pytest timeout so a stuck run fails with diagnostics.
RUN_DEADLINE_S = 75.0
#: The processors' stall watchdog: a consumer call still blocked this long
#: after its own timeout fails the run (KafkaClientStalled) instead of hanging.
STALL_TIMEOUT_S = 30.0
#: Session timeout for tests not about eviction: heartbeats delayed by a busy
#: machine must not expire the session.
SESSION_TIMEOUT_MS = 30_000


class Crash(RuntimeError):
    """Stands in for the process dying mid-run."""


def thread_dump() -> str:
    frames = sys._current_frames()
    out = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame, limit=8)) if frame else ""
        out.append(f"--- {thread.name}\n{stack}")
    return "\n".join(out)


class Deadline:
    def __init__(self, seconds: float = RUN_DEADLINE_S) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())


def wait_for(
    condition: Callable[[], bool],
    deadline: Deadline,
    what: str,
    *context: Any,
    interval_s: float = 0.05,
) -> None:
    """Poll ``condition``; fail with diagnostics (not a hang) at the deadline."""
    while not condition():
        if deadline.expired():
            pytest.fail(f"not {what} after {deadline.seconds}s: {context}\n{thread_dump()}")
        time.sleep(interval_s)


def run_until(
    processor: StreamProcessor,
    done: Callable[[], bool] = lambda: False,
    *,
    deadline_s: float = RUN_DEADLINE_S,
    **kwargs: Any,
) -> ProcessorStats:
    """``processor.run()`` until ``done()`` (or ``max_messages``); stopped
    and failed with diagnostics if that takes longer than ``deadline_s``."""
    deadline = Deadline(deadline_s)
    timed_out = False

    def until() -> bool:
        nonlocal timed_out
        if done():
            return True
        timed_out = deadline.expired()
        return timed_out

    stats = processor.run(until=until, handle_signals=False, **kwargs)
    if timed_out:
        pytest.fail(f"run not done after {deadline_s}s: {stats}\n{thread_dump()}")
    return stats


def to_output(topic: str) -> Callable[[Message[Any]], list[OutgoingRecord]]:
    return lambda m: [OutgoingRecord(topic, m.key, b"out-" + m.value, m.headers)]


def at_least_once(
    driver: KafkaDriver,
    conn: KafkaConnection,
    in_topic: str,
    group: str,
    build: Callable[[ProcessingStep[Any]], ProcessingStep[Any]],
    commits: list[Mapping[Partition, int]] | None = None,
    **consumer_overrides: Any,
) -> tuple[StreamProcessor, OffsetTracker, Any]:
    """consumer → build(Produce → CommitOffsets); successful commits are
    appended to ``commits`` if given."""
    consumer_overrides.setdefault("session_timeout_ms", SESSION_TIMEOUT_MS)
    consumer = driver.consumer(conn, group_id=group, **consumer_overrides)
    producer = driver.producer(conn)
    tracker = OffsetTracker()
    kafka_committer = kafka_commit(consumer)

    def commit(offsets: Mapping[Partition, int]) -> None:
        kafka_committer(offsets)
        if commits is not None:
            commits.append(dict(offsets))

    tail = Produce(producer, CommitOffsets(tracker, commit, commit_interval_s=0.2))
    processor = StreamProcessor(
        consumer,
        [in_topic],
        build(tail),
        tracker,
        commit=commit,
        producer=producer,
        watchdog=driver.watchdog(consumer, STALL_TIMEOUT_S),
    )
    return processor, tracker, consumer


def membership(consumer: Any) -> tuple[int, str]:
    """(generation, member id) on kafka-python; (0, member id) on librdkafka, whose group
    metadata is opaque (a rejoin after an eviction still gets a new member id)."""
    member_id = getattr(consumer, "member_id", None)
    if member_id is not None:
        return 0, str(member_id())
    metadata = consumer.group_metadata()
    return metadata.generation_id, metadata.member_id


def all_done(
    tracker: OffsetTracker, topic: str, start: dict[int, int], end: dict[int, int]
) -> bool:
    watermarks = tracker.committable()
    return all(watermarks.get(Partition(topic, p), start[p]) >= end[p] for p in end)


def end_offsets(read: Callable[..., list[Any]], topic: str) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in read(topic):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def test_end_to_end_n_in_n_out_and_committed(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
    committed_offsets: Callable[[str, str], dict[int, int]],
) -> None:
    in_topic, out_topic, group = make_topic("in", 3), make_topic("out", 3), unique("group")
    values = produce_inputs(in_topic, 60)
    processor, _, _ = at_least_once(
        driver, kafka_conn, in_topic, group, lambda tail: RunTask(to_output(out_topic), tail)
    )
    stats = run_until(processor, max_messages=60)
    assert stats.consumed == stats.submitted == 60
    outputs = read_topic(out_topic)
    assert sorted(r.value for r in outputs) == sorted(b"out-" + v for v in values)
    # Key and headers travel with the message.
    by_value = {r.value: r for r in outputs}
    assert by_value[b"out-in-7"].key == b"key-7"
    assert list(by_value[b"out-in-7"].headers) == [("seq", b"7")]
    ends = end_offsets(read_topic, in_topic)
    assert committed_offsets(group, in_topic) == {p: ends.get(p, 0) for p in range(3)}


def test_crash_then_restart_is_at_least_once(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
    committed_offsets: Callable[[str, str], dict[int, int]],
) -> None:
    in_topic, out_topic, group = make_topic("in", 2), make_topic("out"), unique("group")
    values = produce_inputs(in_topic, 40)
    calls = 0
    commits: list[Mapping[Partition, int]] = []

    def crashing(m: Message[Any]) -> list[OutgoingRecord]:
        nonlocal calls
        if calls == 24 and not any(o > 0 for c in commits for o in c.values()):
            # Hold the 25th record (backpressure: retried later) until some
            # progress is committed, however slow acks are: the crash must
            # come after a commit and before the end.
            raise MessageRejected
        calls += 1
        if calls == 25:
            raise Crash("killed mid-run")
        return to_output(out_topic)(m)

    processor, _, _ = at_least_once(
        driver,
        kafka_conn,
        in_topic,
        group,
        lambda tail: RunTask(crashing, tail),
        commits=commits,
        max_poll_records=5,
    )
    with pytest.raises(Crash):
        run_until(processor)

    # Offsets committed only after acks: every input below a committed offset
    # has its output.
    committed = committed_offsets(group, in_topic)
    assert 0 < sum(committed.values()) < 40
    outputs_after_crash = {r.value for r in read_topic(out_topic)}
    inputs = read_topic(in_topic)
    for record in inputs:
        if record.offset < committed[record.partition]:
            assert b"out-" + record.value in outputs_after_crash

    # Restart with the same group: everything ends in the output at least once.
    ends = end_offsets(read_topic, in_topic)
    ends = {p: ends.get(p, 0) for p in committed}
    processor, tracker, _ = at_least_once(
        driver, kafka_conn, in_topic, group, lambda tail: RunTask(to_output(out_topic), tail)
    )
    run_until(processor, lambda: all_done(tracker, in_topic, committed, ends))
    outputs = Counter(r.value for r in read_topic(out_topic))
    assert set(outputs) == {b"out-" + v for v in values}
    assert committed_offsets(group, in_topic) == ends


def test_backpressure_pauses_and_long_gpu_batches_never_evict(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
) -> None:
    """max_poll_interval_ms=6000; the slow steps take ~9 s, one batch call 7 s.

    Only max_poll_interval_ms is short: that is the eviction this test is
    about. The session timeout is long so that heartbeats delayed by a loaded
    machine cannot evict the member either way.
    """
    in_topic, out_topic, group = make_topic("in"), make_topic("out"), unique("group")
    values = produce_inputs(in_topic, 8)
    max_poll_interval_s = 6.0
    batch_seconds: list[float] = []

    def slow_fetch(m: Message[Any]) -> bytes:
        time.sleep(1.0)
        return bytes(m.value)

    def gpu(payloads: list[bytes]) -> list[bytes]:
        started = time.monotonic()
        time.sleep(max_poll_interval_s + 1 if not batch_seconds else 0.2)
        batch_seconds.append(time.monotonic() - started)
        return [p.upper() for p in payloads]

    def build(tail: ProcessingStep[Any]) -> ProcessingStep[Any]:
        to_records = RunTask(
            lambda m: [OutgoingRecord(out_topic, m.key, b"out-" + m.payload, m.headers)], tail
        )
        batches = RunBatchesInThread(
            gpu, to_records, max_batch_size=4, max_batch_wait_ms=100, max_pending_batches=1
        )
        return RunTaskInThreads(slow_fetch, batches, max_in_flight=2)

    processor, tracker, consumer = at_least_once(
        driver,
        kafka_conn,
        in_topic,
        group,
        build,
        max_poll_interval_ms=int(max_poll_interval_s * 1000),
        # librdkafka refuses a session timeout above max.poll.interval.ms; its
        # heartbeats come from a C thread that a busy interpreter cannot delay.
        session_timeout_ms=SESSION_TIMEOUT_MS
        if driver.name == "kafka-python"
        else int(max_poll_interval_s * 1000),
        heartbeat_interval_ms=1000,
    )
    memberships: set[tuple[int, str]] = set()
    first_record_at: float | None = None

    def done() -> bool:
        nonlocal first_record_at
        # From the first record on (the very first join may take two
        # generations while topic metadata arrives): any rejoin would show here.
        if processor.stats.consumed:
            if first_record_at is None:
                first_record_at = time.monotonic()
            memberships.add(membership(consumer))
        return all_done(tracker, in_topic, {0: 0}, {0: 8})

    stats = run_until(processor, done)
    assert first_record_at is not None
    # Preconditions (lower bounds only): one batch call alone, and so the
    # whole run, really outlasted max_poll_interval_ms.
    assert batch_seconds[0] > max_poll_interval_s
    assert time.monotonic() - first_record_at > max_poll_interval_s
    assert stats.pauses >= 1 and stats.rejected >= 1
    # Never evicted: one generation and member id throughout, nothing revoked
    # or lost, one assignment, and no record delivered twice (below).
    assert stats.revoked == 0 and stats.lost == 0 and stats.assigned == 1, stats
    assert len(memberships) == 1, memberships
    outputs = Counter(r.value for r in read_topic(out_topic))
    assert outputs == Counter(b"out-" + v.upper() for v in values)  # exactly once: no replays


def test_cooperative_rebalance_between_two_members(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
    committed_offsets: Callable[[str, str], dict[int, int]],
) -> None:
    in_topic, out_topic, group = make_topic("in", 4), make_topic("out", 4), unique("group")
    values = produce_inputs(in_topic, 80)
    ends = end_offsets(read_topic, in_topic)
    ends = {p: ends.get(p, 0) for p in range(4)}
    processed: set[bytes] = set()
    stop = threading.Event()
    b_has_partitions = threading.Event()

    def work(m: Message[Any]) -> list[OutgoingRecord]:
        if len(processed) >= 8:
            # Hold the rest of the work until B owns partitions (however long
            # B's join takes), so A cannot do everything before B joined.
            b_has_partitions.wait()
        time.sleep(0.02)
        processed.add(m.value)
        return to_output(out_topic)(m)

    consumers: list[Any] = []

    def member(name: str) -> tuple[StreamProcessor, threading.Thread, list[BaseException]]:
        processor, _, consumer = at_least_once(
            driver,
            kafka_conn,
            in_topic,
            group,
            lambda tail: RunTaskInThreads(work, tail, max_in_flight=4),
            max_poll_records=4,
            heartbeat_interval_ms=500,
            client_id=name,
        )
        consumers.append(consumer)
        errors: list[BaseException] = []

        def target() -> None:
            try:
                processor.run(until=stop.is_set, handle_signals=False)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, name=name)
        thread.start()
        return processor, thread, errors

    deadline = Deadline()
    a, thread_a, errors_a = member("member-a")
    threads = [thread_a]
    try:
        wait_for(lambda: len(processed) >= 8, deadline, "8 processed by A", a.stats, errors_a)
        b, thread_b, errors_b = member("member-b")
        threads.append(thread_b)
        try:
            wait_for(lambda: b.stats.assigned > 0, deadline, "B assigned", a.stats, b.stats)
        finally:
            b_has_partitions.set()

        # Done when every offset is committed (by whichever member owned the
        # partition last), not when every value was processed once: A may
        # have processed records of a moved partition whose results it then
        # dropped, which B has to redo.
        def everything_committed() -> bool:
            if errors_a or errors_b or len(processed) < len(values) or not b.stats.consumed:
                return bool(errors_a or errors_b)
            return committed_offsets(group, in_topic) == ends

        wait_for(everything_committed, deadline, "all committed", a.stats, b.stats, interval_s=0.5)
        # What each member says it owns (the confluent driver keeps its own copy of the
        # assignment) splits the topic between them, as the group assigned it.
        owned = [{tp.partition for tp in c.assignment() if tp.topic == in_topic} for c in consumers]
        assert owned[0] | owned[1] == {0, 1, 2, 3} and not owned[0] & owned[1], owned
    finally:
        stop.set()
        b_has_partitions.set()
        shutdown = Deadline(30)
        for thread in threads:
            thread.join(shutdown.remaining())
    assert not any(t.is_alive() for t in threads), thread_dump()
    assert not errors_a and not errors_b, (errors_a, errors_b)
    assert len(processed) == len(values)
    assert a.stats.revoked >= 1, a.stats  # cooperative: A gave partitions to B
    assert b.stats.assigned >= 1 and b.stats.consumed > 0, b.stats
    outputs = Counter(r.value for r in read_topic(out_topic))
    assert set(outputs) == {b"out-" + v for v in values}
    assert sum(outputs.values()) < 2 * len(values)  # duplicates only around the move
    assert committed_offsets(group, in_topic) == ends


# --- exactly-once ------------------------------------------------------------------


class CrashingProducer:
    """Delegates to a KafkaProducer; the n-th commit "kills the process": it
    raises and the abort never reaches the broker either."""

    def __init__(self, producer: Any, crash_on_commit: int) -> None:
        self._producer = producer
        self._crash_on = crash_on_commit
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def commit_transaction(self) -> None:
        self.commits += 1
        if self.commits == self._crash_on:
            raise Crash("died before commit_transaction")
        self._producer.commit_transaction()

    def abort_transaction(self) -> None:
        if self.commits >= self._crash_on:
            raise Crash("dead processes do not abort")
        self._producer.abort_transaction()


def exactly_once(
    driver: KafkaDriver,
    conn: KafkaConnection,
    in_topic: str,
    out_topic: str,
    group: str,
    txn_id: str,
    wrap: Callable[[Any], Any] = lambda p: p,
) -> tuple[StreamProcessor, OffsetTracker]:
    consumer = driver.consumer(
        conn,
        group_id=group,
        isolation_level="read_committed",
        max_poll_records=5,
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    producer = wrap(driver.producer(conn, transactional_id=txn_id))
    tracker = OffsetTracker()
    terminal = TransactionalProduceAndCommit(
        producer, tracker, consumer.group_metadata, commit_interval_s=0.1, max_messages=10
    )
    first = RunTask(to_output(out_topic), terminal)
    processor = StreamProcessor(
        consumer,
        [in_topic],
        first,
        tracker,
        producer=producer,
        watchdog=driver.watchdog(consumer, STALL_TIMEOUT_S),
    )
    return processor, tracker


def test_exactly_once_output(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
    committed_offsets: Callable[[str, str], dict[int, int]],
) -> None:
    in_topic, out_topic, group = make_topic("in", 2), make_topic("out", 2), unique("group")
    values = produce_inputs(in_topic, 50)
    ends = end_offsets(read_topic, in_topic)
    ends = {p: ends.get(p, 0) for p in range(2)}
    processor, tracker = exactly_once(driver, kafka_conn, in_topic, out_topic, group, unique("txn"))
    run_until(processor, lambda: all_done(tracker, in_topic, {0: 0, 1: 0}, ends))
    outputs = Counter(r.value for r in read_topic(out_topic, "read_committed"))
    assert outputs == Counter(b"out-" + v for v in values)
    assert committed_offsets(group, in_topic) == ends


def test_exactly_once_survives_a_crash_mid_transaction(
    driver: KafkaDriver,
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
    read_topic: Callable[..., list[Any]],
    committed_offsets: Callable[[str, str], dict[int, int]],
) -> None:
    in_topic, out_topic, group = make_topic("in", 2), make_topic("out", 2), unique("group")
    txn_id = unique("txn")
    values = produce_inputs(in_topic, 60)
    ends = end_offsets(read_topic, in_topic)
    ends = {p: ends.get(p, 0) for p in range(2)}

    crashing: list[CrashingProducer] = []

    def wrap(producer: Any) -> CrashingProducer:
        crashing.append(CrashingProducer(producer, crash_on_commit=3))
        return crashing[0]

    processor, _ = exactly_once(driver, kafka_conn, in_topic, out_topic, group, txn_id, wrap)
    with pytest.raises(Crash):
        run_until(processor)
    # The third transaction's records reached the log, its commit never happened.
    committed = committed_offsets(group, in_topic)
    assert 0 < sum(committed.values()) < 60

    # A new producer with the same transactional_id fences the dead one and
    # aborts its open transaction (init_transactions in the step).
    processor, tracker = exactly_once(driver, kafka_conn, in_topic, out_topic, group, txn_id)
    run_until(processor, lambda: all_done(tracker, in_topic, committed, ends))

    committed_view = Counter(r.value for r in read_topic(out_topic, "read_committed"))
    assert committed_view == Counter(b"out-" + v for v in values)  # each exactly once
    raw_view = read_topic(out_topic, "read_uncommitted")
    assert len(raw_view) > len(values)  # the aborted records are in the log, hidden
    assert committed_offsets(group, in_topic) == ends


def test_zombie_producer_is_fenced(
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    read_topic: Callable[..., list[Any]],
) -> None:
    # The input partition must exist: kafka-python retries TxnOffsetCommit for
    # an unknown topic forever (send_offsets_to_transaction has no timeout).
    out_topic, txn_id = make_topic("out"), unique("txn")
    partition = Partition(make_topic("in"), 0)

    def step(tracker: OffsetTracker) -> tuple[TransactionalProduceAndCommit, Any]:
        producer = KafkaProducer(**producer_kwargs(kafka_conn, transactional_id=txn_id))
        return (
            TransactionalProduceAndCommit(
                producer, tracker, lambda: unique("g"), commit_interval_s=0
            ),
            producer,
        )

    def message(offset: int, value: bytes) -> Message[list[OutgoingRecord]]:
        return Message([OutgoingRecord(out_topic, None, value)], partition, offset, 0)

    zombie_tracker, live_tracker = OffsetTracker(), OffsetTracker()
    zombie, zombie_producer = step(zombie_tracker)
    live, live_producer = step(live_tracker)  # init_transactions bumps the epoch
    try:
        zombie_tracker.track(partition, 0)
        zombie.submit(message(0, b"zombie"))
        with pytest.raises((KafkaError, ProduceFailed)) as excinfo:
            zombie.poll()
        cause = excinfo.value.__cause__ or excinfo.value
        assert isinstance(cause, ProducerFencedError), repr(cause)
        live_tracker.track(partition, 0)
        live.submit(message(0, b"live"))
        live.poll()
        assert [r.value for r in read_topic(out_topic, "read_committed")] == [b"live"]
    finally:
        zombie_producer.close(timeout=5)
        live_producer.close(timeout=5)


# --- dead letters, replay, topics --------------------------------------------------


def test_replay_round_trip(
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    read_topic: Callable[..., list[Any]],
    driver: Any,
) -> None:
    """On each driver's consumer and producer: byte-for-byte copies, counted replays."""
    in_topic, dlq = make_topic("in"), make_topic("dlq", 2)

    def consumed(i: int, extra: tuple[tuple[str, bytes], ...] = ()) -> Message[None]:
        return Message(
            None,
            Partition(in_topic, 0),
            i,
            1_700_000_000_000,
            key=b"key-%d" % i,
            value=b"\x00\xffpayload-%d" % i,
            headers=(("app", b"%d" % i), *extra),
        )

    letters = [
        dead_letter_record(consumed(0), ErrorStage.FETCH, "Timeout", "s3", 3, "w", dlq),
        dead_letter_record(consumed(1), ErrorStage.FETCH, "Timeout", "s3", 3, "w", dlq),
        dead_letter_record(consumed(2), ErrorStage.DECODE, "ValueError", "json", 1, "w", dlq),
        dead_letter_record(
            consumed(3, ((REPLAY_COUNT, b"3"),)), ErrorStage.FETCH, "Timeout", "s3", 3, "w", dlq
        ),
        # Too large to copy whole: its value was left out, so it is not replayed.
        dead_letter_record(
            Message(None, Partition(in_topic, 0), 4, 0, b"key-4", b"\x00" * 70_000),
            ErrorStage.FETCH,
            "Timeout",
            "s3",
            3,
            "w",
            dlq,
            65_536,
        ),
    ]
    producer = driver.producer(kafka_conn)
    try:
        for letter in letters:
            producer.send(dlq, key=letter.key, value=letter.value, headers=list(letter.headers))
        producer.flush(timeout=30)

        def factory() -> Any:
            return driver.consumer(kafka_conn, group_id=None)

        result = replay_dead_letters(factory, producer, dlq, in_topic, stage="fetch", max_replays=3)
        assert letters[-1].value == b""
        assert (result.scanned, result.replayed, result.refused, result.skipped) == (5, 2, 2, 1)
        assert not result.stopped_early

        replayed = sorted(read_topic(in_topic), key=lambda r: r.key)
        assert [r.key for r in replayed] == [b"key-0", b"key-1"]
        for i, record in enumerate(replayed):
            assert record.value == b"\x00\xffpayload-%d" % i  # byte for byte
            assert list(record.headers) == [("app", b"%d" % i), (REPLAY_COUNT, b"1")]

        # Fails again: the new dead letter keeps the count; a second replay bumps it.
        again = dead_letter_record(
            Message(
                None,
                Partition(in_topic, 0),
                replayed[0].offset,
                replayed[0].timestamp,
                replayed[0].key,
                replayed[0].value,
                tuple(replayed[0].headers),
            ),
            ErrorStage.CLASSIFY,
            "OOM",
            "cuda",
            1,
            "w2",
            dlq,
        )
        assert DeadLetterHeaders.from_kafka_headers(list(again.headers)).worker == "w2"
        dlq2 = make_topic("dlq2")
        producer.send(dlq2, key=again.key, value=again.value, headers=list(again.headers))
        producer.flush(timeout=30)
        result2 = replay_dead_letters(factory, producer, dlq2, in_topic, limit=5)
        assert result2.replayed == 1
        last = max(read_topic(in_topic), key=lambda r: r.offset)
        assert list(last.headers) == [("app", b"0"), (REPLAY_COUNT, b"2")]

        limited = replay_dead_letters(factory, producer, dlq, in_topic, limit=1)
        assert limited.replayed == 1 and limited.stopped_early
    finally:
        producer.close()


def test_ensure_topics_is_idempotent(
    kafka_admin: Any, kafka_conn: KafkaConnection, unique: Callable[[str], str], driver: Any
) -> None:
    """Through each driver's admin; checked with kafka-python's own client."""
    specs = [
        TopicSpec(unique("a"), partitions=3, configs={"retention.ms": "3600000"}),
        TopicSpec(unique("b"), partitions=1, configs={"cleanup.policy": "compact"}),
    ]
    admin = driver.admin(kafka_conn)
    try:
        assert sorted(ensure_topics(admin, specs)) == sorted(s.name for s in specs)
        assert ensure_topics(admin, specs) == []
        assert admin.partition_counts([s.name for s in specs]) == {
            specs[0].name: 3,
            specs[1].name: 1,
        }
        described = {t["name"]: t for t in kafka_admin.describe_topics([s.name for s in specs])}
        assert len(described[specs[0].name]["partitions"]) == 3
        configs = kafka_admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, specs[1].name)]
        )["topic"][specs[1].name]
        assert configs["cleanup.policy"]["value"] == "compact"
    finally:
        admin.delete_topics([s.name for s in specs])
        admin.close()
    # The delete is acknowledged by the controller; a broker's metadata may list the
    # topics a moment longer, so wait for it (bounded) rather than read it once.
    names = {s.name for s in specs}
    deadline = Deadline(30)
    while names & set(kafka_admin.list_topics()) and not deadline.expired():
        time.sleep(0.2)
    assert not names & set(kafka_admin.list_topics())


# --- the kafka-python 3 behaviour this package is built on ------------------------


def test_kafka_python_runs_listeners_on_its_io_thread(
    kafka_conn: KafkaConnection, make_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = make_topic("facts")
    seen: dict[str, Any] = {}
    consumer = KafkaConsumer(**consumer_kwargs(kafka_conn, group_id=unique("g")))

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            seen["thread"] = threading.current_thread().name
            try:
                consumer.commit(
                    {TopicPartition(topic, 0): __import__("kafka").OffsetAndMetadata(0, "", -1)}
                )
            except Exception as exc:
                seen["commit_error"] = exc

    try:
        consumer.subscribe([topic], listener=Listener())
        deadline = Deadline()
        while "thread" not in seen:
            if deadline.expired():
                pytest.fail(f"never assigned: {consumer.group_metadata()}\n{thread_dump()}")
            consumer.poll(timeout_ms=500)
            # The first join races the just-created topic's metadata: the
            # rejoin that follows can hit kafka-python's lost-join bug.
            rejoin_if_join_lost(consumer)
        assert seen["thread"].startswith("kafka-io")
        assert seen["thread"] != threading.current_thread().name
        assert isinstance(seen["commit_error"], RuntimeError)  # hence: commit after poll()
        metadata = consumer.group_metadata()
        assert metadata.generation_id > 0 and metadata.member_id
    finally:
        consumer.close(autocommit=False)


def test_a_wedged_kafka_python_io_loop_fails_the_run_instead_of_hanging(
    kafka_conn: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    produce_inputs: Callable[..., list[bytes]],
) -> None:
    """kafka-python 3.0.12 waits for its I/O thread without a timeout
    (NetworkSelector.run); a wedged I/O loop must end the run with an error."""
    topic = make_topic("in")
    produce_inputs(topic, 5)
    consumer = KafkaConsumer(**consumer_kwargs(kafka_conn, group_id=unique("g")))
    step: CollectingStep[Any] = CollectingStep()
    processor = StreamProcessor(consumer, [topic], step, OffsetTracker(), stall_timeout_s=2.0)
    gate = threading.Event()
    wedged = False

    def done() -> bool:
        nonlocal wedged
        if processor.stats.consumed and not wedged:
            wedged = True
            # Runs on the I/O thread and blocks it: every later net.run()
            # waits forever, as when the loop is wedged for any reason.
            consumer._net.call_soon_threadsafe(lambda: gate.wait())
        return False

    try:
        with pytest.raises(KafkaClientStalled, match=r"poll\(\) still blocked .*thread alive"):
            run_until(processor, done)
        assert wedged and step.terminated
    finally:
        gate.set()
        consumer.close(autocommit=False)
