"""The steps' per-event fast paths: inline tasks, wakeups, in-order acks, and the
consumer loop's backpressure polling. Same guarantees as the slow paths."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka import TopicPartition
from stream_fakes import P0, P1, CollectingStep, FakeConsumer, FakeProducer, FakeRecord, msg

from worker.streaming.consumer import StreamProcessor
from worker.streaming.exceptions import MessageRejected, ProduceFailed
from worker.streaming.kafka_commit import kafka_commit
from worker.streaming.offsets import OffsetTracker
from worker.streaming.steps import (
    CommitOffsets,
    Produce,
    RunBatchesInThread,
    RunTaskInThreads,
)
from worker.streaming.types import Lease, Message, OutgoingRecord, Partition

# --- RunTaskInThreads(inline=...) ------------------------------------------------


def test_inline_messages_skip_the_threads_and_go_on_at_once() -> None:
    threads: list[str] = []

    def work(m: Message[Any]) -> int:
        threads.append(threading.current_thread().name)
        return int(m.payload) * 10

    nxt: CollectingStep[int] = CollectingStep()
    step = RunTaskInThreads(work, nxt, max_in_flight=2, inline=lambda m: True)
    for offset in range(5):  # more than max_in_flight: nothing is held
        step.submit(msg(offset, offset))
    assert [(m.offset, m.payload) for m in nxt.received] == [(o, o * 10) for o in range(5)]
    assert threads == [threading.current_thread().name] * 5
    assert step.in_flight == 0


def test_inline_result_waits_in_line_behind_held_work_and_counts_against_the_bound() -> None:
    gate = threading.Event()
    nxt: CollectingStep[Any] = CollectingStep()
    step = RunTaskInThreads(
        lambda m: m.payload if m.payload == "text" else gate.wait(5) and m.payload,
        nxt,
        max_in_flight=3,
        inline=lambda m: m.payload == "text",
    )
    step.submit(msg("image", 0))  # on a thread, blocked
    step.submit(msg("text", 1))  # something is held: waits in line, done
    assert nxt.received == []  # its function ran, but it goes on with poll()
    step.submit(msg("text", 2))
    nxt.reject = True
    with pytest.raises(MessageRejected):  # 3 held, none can go on
        step.submit(msg("text", 3))
    nxt.reject = False
    step.submit(msg("text", 3))  # full: what is done goes on first, then room
    assert [m.offset for m in nxt.received] == [1, 2]
    step.poll()  # finished inline results go on while the image is running
    assert [m.offset for m in nxt.received] == [1, 2, 3]
    gate.set()
    step.close()
    step.join(5)
    assert [m.offset for m in nxt.received] == [1, 2, 3, 0]


def test_inline_result_rejected_downstream_is_held_not_recomputed() -> None:
    calls: list[int] = []
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTaskInThreads(
        lambda m: calls.append(m.offset) or m.offset, nxt, max_in_flight=1, inline=lambda m: True
    )
    nxt.reject = True
    step.submit(msg(None, 0))  # accepted and computed, held
    with pytest.raises(MessageRejected):
        step.submit(msg(None, 1))
    nxt.reject = False
    step.submit(msg(None, 1))  # the full step first forwards what is done
    assert calls == [0, 1]
    assert [m.offset for m in nxt.received] == [0, 1]


def test_inline_skips_revoked_and_raises_errors_from_submit() -> None:
    lease = Lease(P0)
    lease.revoke()
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTaskInThreads(lambda m: 1 // 0, nxt, max_in_flight=2, inline=lambda m: True)
    step.submit(msg(None, 0, lease=lease))  # not even called
    with pytest.raises(ZeroDivisionError):
        step.submit(msg(None, 1))
    assert nxt.received == []


def test_thread_tasks_set_the_wakeup_when_done() -> None:
    wakeup = threading.Event()
    nxt: CollectingStep[Any] = CollectingStep()
    step = RunTaskInThreads(lambda m: m.offset, nxt, max_in_flight=2, wakeup=wakeup)
    step.submit(msg(None, 0))
    assert wakeup.wait(5)
    step.poll()
    assert [m.offset for m in nxt.received] == [0]
    step.close()
    step.join(5)


# --- RunBatchesInThread ----------------------------------------------------------


def test_batch_step_uses_finished_batches_before_rejecting_and_sets_the_wakeup() -> None:
    wakeup = threading.Event()
    nxt: CollectingStep[int] = CollectingStep()
    step: RunBatchesInThread[int, int] = RunBatchesInThread(
        lambda ps: ps,
        nxt,
        max_batch_size=1,
        max_batch_wait_ms=60_000,
        max_pending_batches=1,
        wakeup=wakeup,
    )
    step.submit(msg(0, 0))  # sealed at once: the one slot
    assert wakeup.wait(5)  # the worker thread finished it
    step.submit(msg(1, 1))  # open, full; fine
    # The slot is held by a finished, unforwarded batch: submit forwards it
    # instead of rejecting.
    step.submit(msg(2, 2))
    assert [m.offset for m in nxt.received] == [0]
    step.close()
    step.join(5)
    assert [m.offset for m in nxt.received] == [0, 1, 2]


# --- Produce -----------------------------------------------------------------------


def records(*topics: str) -> list[OutgoingRecord]:
    return [OutgoingRecord(t, b"k", b"v", ()) for t in topics]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_produce_forwards_acks_in_order_at_once_and_out_of_order_ones_by_scan() -> None:
    clock = Clock()
    producer = FakeProducer()
    nxt: CollectingStep[Any] = CollectingStep()
    step = Produce(producer, nxt, clock=clock)
    for offset in range(4):
        step.submit(msg(records("out"), offset))
    futures = [sent[2] for sent in producer.sent]
    futures[0].ack()
    futures[1].ack()
    futures[3].ack()
    step.poll()  # 0 and 1 in order; 3 found by the scan (the first one is due)
    assert [m.offset for m in nxt.received] == [0, 1, 3]
    step.submit(msg(records("out"), 4))
    producer.sent[-1][2].ack()
    step.poll()  # 4 is acked behind 2, but the last scan was just now
    assert [m.offset for m in nxt.received] == [0, 1, 3]
    clock.now += 1
    step.poll()
    assert [m.offset for m in nxt.received] == [0, 1, 3, 4]
    futures[2].ack()
    step.poll()  # at the head: at once
    assert [m.offset for m in nxt.received] == [0, 1, 3, 4, 2]
    assert step.in_flight == 0


def test_produce_failure_behind_the_head_is_raised_by_the_scan() -> None:
    producer = FakeProducer()
    step = Produce(producer, CollectingStep())
    step.submit(msg(records("out"), 0))
    step.submit(msg(records("out"), 1))
    producer.sent[1][2].fail(TimeoutError("delivery timeout"))
    with pytest.raises(ProduceFailed, match="in/0@1"):
        step.poll()


def test_produce_empty_payload_goes_on_at_submit_and_waits_when_next_is_full() -> None:
    nxt: CollectingStep[Any] = CollectingStep()
    step = Produce(FakeProducer(), nxt)
    step.submit(msg([], 0))
    assert [m.offset for m in nxt.received] == [0]
    nxt.reject = True
    step.submit(msg([], 1))
    assert step.in_flight == 1
    nxt.reject = False
    step.poll()
    assert [m.offset for m in nxt.received] == [0, 1]


def test_produce_commits_in_order_when_acks_come_in_order() -> None:
    tracker = OffsetTracker()
    commits: list[dict[Partition, int]] = []
    producer = FakeProducer(auto_ack=True)
    step = Produce(producer, CommitOffsets(tracker, commits.append, commit_interval_s=0))
    for partition in (P0, P1):
        for offset in range(3):
            tracker.track(partition, offset)
            step.submit(msg(records("out"), offset, partition=partition))
    step.poll()
    assert commits == [{P0: 3, P1: 3}]


# --- StreamProcessor under backpressure --------------------------------------------

TP0 = TopicPartition("in", 0)


class TimedConsumer(FakeConsumer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.timeouts: list[int] = []

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[FakeRecord]]:
        self.timeouts.append(timeout_ms)
        return super().poll(timeout_ms)


class Gate(CollectingStep[Any]):
    """Rejects until ``open`` is set; counts the loop's turns (its polls)."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def submit(self, message: Message[Any]) -> None:
        if not self.open.is_set():
            raise MessageRejected
        super().submit(message)


def test_paused_loop_polls_kafka_rarely_without_timeout_and_turns_on_wakeups() -> None:
    consumer = TimedConsumer([TP0])
    consumer.script = [[FakeRecord("in", 0, o, b"v") for o in range(3)]]
    step = Gate()
    wakeup = threading.Event()
    processor = StreamProcessor(
        consumer,
        ["in"],
        step,
        OffsetTracker(),
        commit=kafka_commit(consumer),
        poll_timeout_ms=60_000,  # paused: kafka is polled at most once a minute
        backpressure_wait_ms=60_000,  # ... and the loop only turns when woken
        wakeup=wakeup,
        pause_after_ms=0,
    )
    turns: list[int] = []

    def wake_then_open() -> None:
        while not processor.stats.rejected:
            threading.Event().wait(0.001)
        turns.append(step.polls)
        for _ in range(3):
            while wakeup.is_set():  # until the loop took the previous one
                threading.Event().wait(0.001)
            wakeup.set()
        while wakeup.is_set():
            threading.Event().wait(0.001)
        turns.append(step.polls)
        step.open.set()
        wakeup.set()

    waker = threading.Thread(target=wake_then_open, daemon=True)
    waker.start()
    stats = processor.run(until=lambda: len(step.received) == 3, handle_signals=False)
    waker.join(5)
    assert stats.pauses == 1
    # One poll brought the records (normal timeout); none while paused (the
    # interval had not passed), yet the loop turned on each wakeup.
    assert consumer.timeouts[:2] == [60_000, 60_000]
    assert turns[1] >= turns[0] + 3
    assert [m.offset for m in step.received] == [0, 1, 2]
    assert consumer.paused() == set()


def test_paused_loop_polls_with_zero_timeout_when_the_interval_passed() -> None:
    consumer = TimedConsumer([TP0])
    consumer.script = [[FakeRecord("in", 0, o, b"v") for o in range(2)]]
    step = Gate()
    processor = StreamProcessor(
        consumer,
        ["in"],
        step,
        OffsetTracker(),
        commit=kafka_commit(consumer),
        poll_timeout_ms=0,
        backpressure_wait_ms=1,
        pause_after_ms=0,
    )

    def until() -> bool:
        if len(consumer.timeouts) >= 5:
            step.open.set()
        return len(step.received) == 2

    processor.run(until=until, handle_signals=False)
    assert consumer.timeouts[:5] == [0] * 5
