"""StreamProcessor loop logic against a fake consumer (no broker)."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotCoordinatorError,
)
from stream_fakes import CollectingStep, FakeConsumer, FakeRecord

from worker.streaming.consumer import StreamProcessor
from worker.streaming.exceptions import CommitFailed, KafkaClientStalled, MessageRejected
from worker.streaming.kafka_commit import kafka_commit
from worker.streaming.offsets import OffsetTracker
from worker.streaming.types import Message, Partition

TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


def records(partition: int, offsets: range) -> list[FakeRecord]:
    return [
        FakeRecord("in", partition, o, b"v%d" % o, key=b"k", headers=[("h", b"1")]) for o in offsets
    ]


class GatedStep(CollectingStep[Any]):
    """Holds at most ``capacity`` live (not revoked) messages, then rejects."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def submit(self, message: Message[Any]) -> None:
        if sum(not m.revoked for m in self.received) >= self.capacity:
            raise MessageRejected
        super().submit(message)


def make(
    consumer: FakeConsumer, step: CollectingStep[Any], **kw: Any
) -> tuple[StreamProcessor, OffsetTracker]:
    tracker = OffsetTracker()
    processor = StreamProcessor(
        consumer, ["in"], step, tracker, commit=kafka_commit(consumer), poll_timeout_ms=0, **kw
    )
    return processor, tracker


def test_messages_carry_the_raw_record() -> None:
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(3))]
    step: CollectingStep[Any] = CollectingStep()
    processor, tracker = make(consumer, step)
    stats = processor.run(max_messages=3, handle_signals=False)
    assert stats.consumed == stats.submitted == 3
    first = step.received[0]
    assert (first.payload, first.value, first.key, first.headers) == (
        b"v0",
        b"v0",
        b"k",
        (("h", b"1"),),
    )
    assert first.partition == Partition("in", 0)
    assert tracker.in_flight == 3  # the fake step never completes anything
    assert step.closed and step.joined == [30.0]
    assert consumer.closed_with == {"autocommit": False}


def test_backpressure_pauses_keeps_polling_and_resumes() -> None:
    consumer = FakeConsumer([TP0, TP1])
    consumer.script = [records(0, range(5)) + records(1, range(2))]
    step = GatedStep(capacity=2)
    processor, _ = make(consumer, step, pause_after_ms=0)
    polls_when_released: list[int] = []

    def until() -> bool:
        if processor.stats.rejected and consumer.polls >= 10 and step.capacity == 2:
            assert consumer.paused() == {TP0, TP1}
            polls_when_released.append(consumer.polls)
            step.capacity = 100
        return len(step.received) == 7

    stats = processor.run(until=until, handle_signals=False)
    assert polls_when_released  # consumer.poll() went on while paused
    assert stats.pauses == 1 and stats.rejected >= 1
    assert consumer.paused() == set()
    # Submitted in consumption order, none lost or duplicated.
    assert [(m.partition.index, m.offset) for m in step.received] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 0),
        (1, 1),
    ]


def test_a_short_backpressure_spell_holds_the_records_without_pausing_or_polling() -> None:
    """librdkafka drops a paused partition's fetched messages: a spell shorter than
    ``pause_after_ms`` must not pause, and the loop must not fetch past the records it
    holds (memory stays bounded by one poll)."""
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(4)), records(0, range(4, 8))]
    step = GatedStep(capacity=2)
    processor, _ = make(consumer, step, pause_after_ms=60_000, backpressure_wait_ms=1)
    polls_while_held: list[int] = []

    def until() -> bool:
        if processor.stats.rejected >= 20 and step.capacity == 2:
            polls_while_held.append(consumer.polls)
            assert consumer.paused() == set()
            step.capacity = 100
        return len(step.received) == 8

    stats = processor.run(until=until, handle_signals=False)
    assert polls_while_held == [1]  # the first poll's records held, no second poll meanwhile
    assert stats.pauses == 0 and consumer.pause_calls == 0
    assert [m.offset for m in step.received] == list(range(8))


def test_a_long_backpressure_spell_pauses() -> None:
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(4))]
    step = GatedStep(capacity=2)
    processor, _ = make(consumer, step, pause_after_ms=50, backpressure_wait_ms=1)
    started = time.monotonic()
    paused_after: list[float] = []

    def until() -> bool:
        if consumer.paused() and not paused_after:
            paused_after.append(time.monotonic() - started)
            step.capacity = 100
        return len(step.received) == 4

    stats = processor.run(until=until, handle_signals=False)
    assert stats.pauses == 1 and paused_after and paused_after[0] >= 0.05
    assert consumer.paused() == set()


def test_revocation_drops_pending_commits_done_prefix_and_forgets() -> None:
    consumer = FakeConsumer([TP0, TP1])
    step = GatedStep(capacity=3)
    processor, tracker = make(consumer, step)
    done: list[Message[Any]] = []

    def revoke() -> None:
        # What kafka-python does inside poll(): listener on its I/O thread.
        done.extend(step.received[:2])  # pretend the terminal step finished these
        for m in done:
            tracker.complete(m.partition, m.offset)
        consumer.revoke(TP0)

    consumer.script = [records(0, range(4)) + records(1, range(2)), revoke, records(1, range(2, 3))]
    stats = processor.run(
        until=lambda: (
            any(m.partition.index == 1 and m.offset == 2 for m in step.received)
            or consumer.polls > 50
        ),
        handle_signals=False,
    )
    assert stats.revoked == 1
    assert consumer.commits == [{("in", 0): 2}]  # finished prefix of the revoked partition
    assert Partition("in", 0) not in tracker.partitions
    # Pending records of partition 0 were dropped, partition 1 went on.
    assert stats.dropped == 1
    assert [(m.partition.index, m.offset) for m in step.received] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    assert all(m.revoked for m in step.received if m.partition.index == 0)
    assert not any(m.revoked for m in step.received if m.partition.index == 1)


def test_lost_partitions_are_not_committed() -> None:
    consumer = FakeConsumer([TP0])
    step: CollectingStep[Any] = CollectingStep()
    processor, tracker = make(consumer, step)

    def lose() -> None:
        consumer._assigned.clear()
        consumer.listener.on_partitions_lost({TP0})

    consumer.script = [records(0, range(2)), lose]
    stats = processor.run(until=lambda: processor.stats.lost == 1, handle_signals=False)
    assert stats.lost == 1
    assert consumer.commits == []
    assert tracker.partitions == frozenset()


def test_step_exception_terminates_without_join() -> None:
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(2))]

    class Exploding(CollectingStep[Any]):
        def submit(self, message: Message[Any]) -> None:
            raise RuntimeError("bug in a step")

    step = Exploding()
    processor, _ = make(consumer, step)
    with pytest.raises(RuntimeError, match="bug in a step"):
        processor.run(handle_signals=False)
    assert step.terminated and step.joined == []
    assert consumer.closed_with == {"autocommit": False}


def test_stop_and_max_messages_bound_consumption() -> None:
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(10))]
    step: CollectingStep[Any] = CollectingStep()
    processor, tracker = make(consumer, step)
    stats = processor.run(max_messages=4, handle_signals=False)
    assert stats.consumed == 4
    assert [m.offset for m in step.received] == [0, 1, 2, 3]
    assert tracker.committable() == {Partition("in", 0): 0}

    consumer2 = FakeConsumer([TP0])
    processor2, _ = make(consumer2, CollectingStep())
    processor2.stop()
    assert processor2.run(handle_signals=False).consumed == 0


def test_unsticks_a_join_kafka_python_left_unapplied() -> None:
    """kafka-python 3.0.12: a finished join task nobody consumed while no
    rejoin is pending means the assignment was lost; the loop asks to rejoin."""

    class Task:
        is_done = True

    class Coordinator:
        def __init__(self) -> None:
            self._join_task: Task | None = Task()
            self.rejoin_requested = 0

        def need_rejoin(self) -> bool:
            return self.rejoin_requested > 0

        def request_rejoin(self) -> None:
            self.rejoin_requested += 1

    consumer = FakeConsumer([TP0])
    coordinator = Coordinator()
    consumer._coordinator = coordinator  # type: ignore[attr-defined]
    processor, _ = make(consumer, CollectingStep())
    processor.run(until=lambda: consumer.polls >= 3, handle_signals=False)
    assert coordinator.rejoin_requested == 1  # once: then a rejoin is pending

    coordinator2 = Coordinator()
    coordinator2._join_task = None  # normal state after a consumed join
    consumer2 = FakeConsumer([TP0])
    consumer2._coordinator = coordinator2  # type: ignore[attr-defined]
    processor2, _ = make(consumer2, CollectingStep())
    processor2.run(until=lambda: consumer2.polls >= 3, handle_signals=False)
    assert coordinator2.rejoin_requested == 0


def test_sigterm_shuts_down_gracefully_and_restores_the_handler() -> None:
    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(3))]
    step: CollectingStep[Any] = CollectingStep()
    processor, _ = make(consumer, step)
    before = signal.getsignal(signal.SIGTERM)

    def until() -> bool:
        if consumer.polls == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled: sets the stop flag
        return consumer.polls > 100  # never reached if the signal works

    stats = processor.run(until=until)
    assert consumer.polls < 10
    assert stats.submitted == 3
    assert step.closed and step.joined  # graceful: joined, not terminated
    assert not step.terminated
    assert signal.getsignal(signal.SIGTERM) == before


class WedgedNet:
    """The kafka-python 3.0.12 NetworkSelector parts the stall watchdog reads."""

    def __init__(self, io_thread: threading.Thread) -> None:
        self._io_thread = io_thread
        self._exception: BaseException | None = None
        self.released = threading.Event()
        self.failed_with: BaseException | None = None

    def _fail_pending_waiters(self, exc: BaseException) -> None:
        self.failed_with = exc
        self.released.set()


class WedgingConsumer(FakeConsumer):
    """poll() #3 blocks like net.run() on a wedged I/O loop: until its waiter is failed."""

    def __init__(self, net: WedgedNet) -> None:
        super().__init__([TP0])
        self._net = net

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[FakeRecord]]:
        if self.polls == 2:
            self.polls += 1
            assert self._net.released.wait(30), "watchdog never fired"
            assert self._net.failed_with is not None
            raise self._net.failed_with
        return super().poll(timeout_ms)


def test_a_wedged_kafka_client_fails_the_run_instead_of_hanging() -> None:
    net = WedgedNet(io_thread=threading.main_thread())  # alive, but not serving
    consumer = WedgingConsumer(net)
    consumer.script = [records(0, range(2))]
    step: CollectingStep[Any] = CollectingStep()
    processor, _ = make(consumer, step, stall_timeout_s=0.2)
    with pytest.raises(KafkaClientStalled, match=r"poll\(\) still blocked .*thread alive"):
        processor.run(handle_signals=False)
    assert step.terminated and not step.joined  # failed: nothing more committed
    assert consumer.closed_with is None  # close() would block on the same loop


def test_a_dead_io_thread_fails_the_run_at_once() -> None:
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    consumer = WedgingConsumer(WedgedNet(io_thread=dead))
    consumer.script = [records(0, range(2))]
    step: CollectingStep[Any] = CollectingStep()
    processor, _ = make(consumer, step, stall_timeout_s=3600)
    with pytest.raises(KafkaClientStalled, match="I/O thread is dead"):
        processor.run(handle_signals=False)
    assert consumer.polls == 0 and step.terminated


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (KafkaConnectionError("111 ECONNREFUSED"), True),  # broker restarting
        (NotCoordinatorError(), True),  # the group coordinator moved
        (KafkaTimeoutError(), True),
        (CommitFailedError(), True),  # rebalance raced the commit
        (FencedInstanceIdError(), False),  # another process took our static id
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_commit_errors_that_heal_are_retried_later(error: Exception, retried: bool) -> None:
    consumer = FakeConsumer([])

    def failing_commit(offsets: Any, timeout_ms: int | None = None) -> None:
        raise error

    consumer.commit = failing_commit  # type: ignore[method-assign]
    commit = kafka_commit(consumer)
    expected = CommitFailed if retried else type(error)
    with pytest.raises(expected):
        commit({Partition("in", 0): 5})


def test_the_signal_handler_does_not_log() -> None:
    """It runs between two bytecodes of the loop thread, maybe inside a log call that
    holds the stream's non-reentrant lock: logging there deadlocked a SIGTERMed worker
    (fault tests). The note is logged by the shutdown instead."""
    from structlog.testing import capture_logs

    consumer = FakeConsumer([TP0])
    consumer.script = [records(0, range(3))]
    processor, _ = make(consumer, CollectingStep())
    with capture_logs() as in_handler:
        processor._on_signal(signal.SIGTERM, None)
    assert in_handler == []
    with capture_logs() as logs:
        processor.run(until=lambda: consumer.polls > 100, handle_signals=False)
    assert consumer.polls == 0  # stopped before the first poll
    notes = [entry for entry in logs if entry["event"] == "shutdown requested"]
    assert [note["signal"] for note in notes] == ["SIGTERM"]
