"""Unit tests of the processing steps with fake next steps and producers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kafka import TopicPartition
from stream_fakes import P0, P1, CollectingStep, FakeProducer, msg

from worker.streaming.exceptions import CommitFailed, InvalidState, MessageRejected, ProduceFailed
from worker.streaming.offsets import OffsetTracker
from worker.streaming.steps import (
    CommitOffsets,
    Produce,
    RunBatchesInThread,
    RunTask,
    RunTaskInThreads,
    TransactionalProduceAndCommit,
)
from worker.streaming.types import Lease, Message, OutgoingRecord, Partition


def wait_until(predicate: Any, poll: Any = None, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        if poll is not None:
            poll()
        time.sleep(0.002)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- RunTask -------------------------------------------------------------------


def test_run_task_transforms_and_keeps_record_identity() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTask(lambda m: m.payload * 2, nxt)
    step.submit(msg(21, 7))
    (out,) = nxt.received
    assert out.payload == 42
    assert (out.partition, out.offset, out.key, out.value, out.headers) == (
        P0,
        7,
        b"k7",
        b"v7",
        (("h", b"x"),),
    )


def test_run_task_holds_result_when_next_is_full_and_never_recomputes() -> None:
    calls: list[int] = []
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTask(lambda m: calls.append(m.offset) or m.offset, nxt)
    nxt.reject = True
    step.submit(msg(None, 0))  # accepted, result carried
    with pytest.raises(MessageRejected):
        step.submit(msg(None, 1))
    nxt.reject = False
    step.poll()
    step.submit(msg(None, 1))
    assert calls == [0, 1]
    assert [m.offset for m in nxt.received] == [0, 1]


def test_run_task_drops_revoked_and_propagates_errors() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    lease = Lease(P0)
    lease.revoke()
    step = RunTask(lambda m: 1 // 0, nxt)
    step.submit(msg(None, 0, lease=lease))  # not even called
    assert nxt.received == []
    with pytest.raises(ZeroDivisionError):
        step.submit(msg(None, 1))


def test_run_task_join_closes_and_joins_next() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTask(lambda m: 1, nxt)
    step.close()
    with pytest.raises(InvalidState):
        step.submit(msg(None, 0))
    step.join(1.0)
    assert nxt.closed and len(nxt.joined) == 1


# --- RunTaskInThreads ----------------------------------------------------------


def test_threads_bounded_in_flight_rejects() -> None:
    gate = threading.Event()
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTaskInThreads(lambda m: gate.wait(5) and m.offset, nxt, max_in_flight=2)
    step.submit(msg(None, 0))
    step.submit(msg(None, 1))
    with pytest.raises(MessageRejected):
        step.submit(msg(None, 2))
    gate.set()
    wait_until(lambda: len(nxt.received) == 2, step.poll)
    step.submit(msg(None, 2))
    step.close()
    step.join(5)
    assert sorted(m.offset for m in nxt.received) == [0, 1, 2]


def test_threads_forward_out_of_order() -> None:
    slow = threading.Event()
    nxt: CollectingStep[int] = CollectingStep()

    def fn(m: Message[None]) -> int:
        if m.offset == 0:
            slow.wait(5)
        return m.offset

    step = RunTaskInThreads(fn, nxt, max_in_flight=4)
    step.submit(msg(None, 0))
    step.submit(msg(None, 1))
    wait_until(lambda: len(nxt.received) == 1, step.poll)
    assert nxt.received[0].offset == 1  # did not wait for offset 0
    slow.set()
    step.close()
    step.join(5)
    assert [m.offset for m in nxt.received] == [1, 0]


def test_threads_reraise_unexpected_exceptions() -> None:
    nxt: CollectingStep[int] = CollectingStep()

    def fn(m: Message[None]) -> int:
        raise RuntimeError("bug")

    step = RunTaskInThreads(fn, nxt, max_in_flight=1)
    step.submit(msg(None, 0))
    with pytest.raises(RuntimeError, match="bug"):
        wait_until(lambda: False, step.poll)
    step.terminate()
    assert nxt.terminated


def test_threads_skip_revoked_work() -> None:
    ran: list[int] = []
    gate = threading.Event()
    nxt: CollectingStep[int] = CollectingStep()

    def fn(m: Message[None]) -> int:
        gate.wait(5)
        ran.append(m.offset)
        return m.offset

    lease = Lease(P0)
    step = RunTaskInThreads(fn, nxt, max_in_flight=3, max_workers=1)
    step.submit(msg(None, 0, lease=lease))  # running (blocked on gate)
    step.submit(msg(None, 1, lease=lease))  # queued
    step.submit(msg(None, 2, partition=P1))
    lease.revoke()
    gate.set()
    step.close()
    step.join(5)
    assert 1 not in ran  # skipped before it started
    assert [m.offset for m in nxt.received] == [2]  # 0 ran but was not forwarded


def test_threads_join_waits_for_next_step_room() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    step = RunTaskInThreads(lambda m: m.offset, nxt, max_in_flight=2)
    nxt.reject = True
    step.submit(msg(None, 0))
    threading.Timer(0.1, lambda: setattr(nxt, "reject", False)).start()
    step.close()
    step.join(5)
    assert [m.offset for m in nxt.received] == [0]


# --- RunBatchesInThread --------------------------------------------------------


def test_batches_by_count() -> None:
    batches: list[list[int]] = []
    nxt: CollectingStep[int] = CollectingStep()

    def fn(payloads: list[int]) -> list[int]:
        batches.append(payloads)
        return [p * 10 for p in payloads]

    step = RunBatchesInThread(fn, nxt, max_batch_size=3, max_batch_wait_ms=60_000)
    for i in range(7):
        step.submit(msg(i, i))
    wait_until(lambda: len(nxt.received) == 6, step.poll)
    assert batches == [[0, 1, 2], [3, 4, 5]]
    step.close()
    step.join(5)  # seals the partial batch without waiting for max_batch_wait_ms
    assert batches[-1] == [6]
    assert [m.payload for m in nxt.received] == [0, 10, 20, 30, 40, 50, 60]
    assert [m.offset for m in nxt.received] == list(range(7))
    assert nxt.closed


def test_batches_by_wait_time() -> None:
    clock = FakeClock()
    batches: list[list[int]] = []
    nxt: CollectingStep[int] = CollectingStep()
    step = RunBatchesInThread(
        lambda ps: batches.append(ps) or ps,
        nxt,
        max_batch_size=100,
        max_batch_wait_ms=50,
        clock=clock,
    )
    step.submit(msg(1, 0))
    clock.now += 0.02
    step.submit(msg(2, 1))
    step.poll()
    time.sleep(0.05)
    assert batches == []  # 20 ms old: still open
    clock.now += 0.04
    wait_until(lambda: len(nxt.received) == 2, step.poll)
    assert batches == [[1, 2]]
    step.close()
    step.join(1)


def test_batches_by_cost_budget() -> None:
    batches: list[list[int]] = []
    nxt: CollectingStep[int] = CollectingStep()
    step = RunBatchesInThread(
        lambda ps: batches.append(ps) or ps,
        nxt,
        max_batch_size=100,
        max_batch_wait_ms=60_000,
        cost=lambda p: p,
        max_batch_cost=10,
        max_pending_batches=10,
    )
    for i, cost in enumerate([4, 4, 4, 6, 25, 1]):
        step.submit(msg(cost, i))
    step.close()
    step.join(5)
    # 4+4 (next 4 would exceed), 4+6 (exactly the budget), 25 alone (oversized), 1
    assert batches == [[4, 4], [4, 6], [25], [1]]


def test_batches_reject_when_pending_slots_are_full() -> None:
    gate = threading.Event()
    nxt: CollectingStep[int] = CollectingStep()
    step = RunBatchesInThread(
        lambda ps: gate.wait(5) and ps,
        nxt,
        max_batch_size=2,
        max_batch_wait_ms=60_000,
        max_pending_batches=1,
    )
    step.submit(msg(0, 0))
    step.submit(msg(1, 1))  # batch 1 sealed, running (blocked)
    step.submit(msg(2, 2))
    step.submit(msg(3, 3))  # batch 2 full, no slot: stays open
    with pytest.raises(MessageRejected):
        step.submit(msg(4, 4))
    assert step.pending_batches == 1
    gate.set()
    wait_until(lambda: len(nxt.received) == 4, step.poll)
    step.submit(msg(4, 4))
    step.close()
    step.join(5)
    assert [m.offset for m in nxt.received] == [0, 1, 2, 3, 4]


def test_batch_slot_held_until_outputs_are_accepted_downstream() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    step = RunBatchesInThread(
        lambda ps: ps, nxt, max_batch_size=1, max_batch_wait_ms=0, max_pending_batches=1
    )
    nxt.reject = True
    step.submit(msg(0, 0))  # sealed
    time.sleep(0.05)
    step.poll()  # done, but the next step refuses it
    step.submit(msg(1, 1))  # open batch, full, cannot seal
    with pytest.raises(MessageRejected):
        step.submit(msg(2, 2))
    nxt.reject = False
    wait_until(lambda: len(nxt.received) == 2, step.poll)
    step.close()
    step.join(5)


def test_batch_function_errors_and_length_mismatch_are_reraised() -> None:
    nxt: CollectingStep[int] = CollectingStep()
    step = RunBatchesInThread(lambda ps: ps[:-1], nxt, max_batch_size=2, max_batch_wait_ms=0)
    step.submit(msg(0, 0))
    step.submit(msg(1, 1))
    with pytest.raises(InvalidState, match="2 inputs"):
        wait_until(lambda: False, step.poll)
    step.terminate()

    def boom(ps: list[int]) -> list[int]:
        raise MemoryError("CUDA out of memory")

    step2 = RunBatchesInThread(boom, nxt, max_batch_size=1, max_batch_wait_ms=0)
    step2.submit(msg(0, 0))
    with pytest.raises(MemoryError):
        wait_until(lambda: False, step2.poll)
    step2.terminate()


def test_batches_skip_revoked_messages() -> None:
    seen: list[list[int]] = []
    nxt: CollectingStep[int] = CollectingStep()
    lease = Lease(P0)
    step = RunBatchesInThread(
        lambda ps: seen.append(ps) or ps, nxt, max_batch_size=10, max_batch_wait_ms=60_000
    )
    step.submit(msg(0, 0, lease=lease))
    step.submit(msg(1, 1, partition=P1))
    lease.revoke()
    step.close()
    step.join(5)
    assert seen == [[1]]
    assert [m.payload for m in nxt.received] == [1]


def test_batch_runs_on_one_dedicated_thread() -> None:
    threads: set[str] = set()
    nxt: CollectingStep[int] = CollectingStep()

    def fn(ps: list[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        return ps

    step = RunBatchesInThread(fn, nxt, max_batch_size=1, max_batch_wait_ms=0, thread_name="gpu")
    for i in range(5):
        wait_until(lambda: step.pending_batches < 2, step.poll)
        step.submit(msg(i, i))
    step.close()
    step.join(5)
    assert threads == {"gpu"}
    assert len(nxt.received) == 5


# --- Produce -------------------------------------------------------------------


def records(*topics: str) -> list[OutgoingRecord]:
    return [OutgoingRecord(t, b"k", b"v-" + t.encode(), (("a", b"1"),)) for t in topics]


def test_produce_forwards_only_after_all_records_acked() -> None:
    producer = FakeProducer()
    nxt: CollectingStep[Any] = CollectingStep()
    step = Produce(producer, nxt)
    step.submit(msg(records("out", "dlq"), 0))
    step.submit(msg([], 1))  # nothing to write: forwarded right away
    step.poll()
    assert [m.offset for m in nxt.received] == [1]
    topic, kwargs, first = producer.sent[0]
    assert topic == "out"
    assert kwargs == {"value": b"v-out", "key": b"k", "headers": [("a", b"1")], "partition": None}
    first.ack()
    step.poll()
    assert [m.offset for m in nxt.received] == [1]  # second record still unacked
    producer.sent[1][2].ack()
    step.poll()
    assert [m.offset for m in nxt.received] == [1, 0]


def test_produce_failure_is_raised() -> None:
    producer = FakeProducer()
    step = Produce(producer, CollectingStep())
    step.submit(msg(records("out"), 3))
    producer.sent[0][2].fail(TimeoutError("delivery timeout"))
    with pytest.raises(ProduceFailed, match="in/0@3") as excinfo:
        step.poll()
    assert isinstance(excinfo.value.__cause__, TimeoutError)


def test_produce_bounded_and_join_flushes() -> None:
    producer = FakeProducer()
    nxt: CollectingStep[Any] = CollectingStep()
    step = Produce(producer, nxt, max_in_flight=2)
    step.submit(msg(records("out"), 0))
    step.submit(msg(records("out"), 1))
    with pytest.raises(MessageRejected):
        step.submit(msg(records("out"), 2))
    step.close()
    step.join(5)
    assert producer.flushes == 1
    assert [m.offset for m in nxt.received] == [0, 1]
    assert nxt.closed


def test_produce_does_not_send_revoked() -> None:
    producer = FakeProducer(auto_ack=True)
    lease = Lease(P0)
    lease.revoke()
    step = Produce(producer, CollectingStep())
    step.submit(msg(records("out"), 0, lease=lease))
    assert producer.sent == []


def test_produce_rejects_non_records() -> None:
    step = Produce(FakeProducer(), CollectingStep())
    with pytest.raises(TypeError):
        step.submit(msg([b"raw"], 0))


# --- CommitOffsets -------------------------------------------------------------


def test_commit_offsets_interval_and_changed_partitions_only() -> None:
    clock = FakeClock()
    tracker = OffsetTracker()
    commits: list[dict[Partition, int]] = []
    step = CommitOffsets(tracker, commits.append, commit_interval_s=1.0, clock=clock)
    for offset in range(3):
        tracker.track(P0, offset)
    tracker.track(P1, 0)
    step.submit(msg(None, 0))
    step.poll()
    assert commits == []  # interval not reached
    clock.now += 1.0
    step.poll()
    assert commits == [{P0: 1, P1: 0}]
    step.submit(msg(None, 2))  # out of order: watermark stays at 1
    clock.now += 1.0
    step.poll()
    assert commits == [{P0: 1, P1: 0}]  # nothing changed, nothing sent
    step.submit(msg(None, 1))
    step.close()
    step.join()
    assert commits[-1] == {P0: 3}


def test_commit_failure_is_retried_later() -> None:
    clock = FakeClock()
    tracker = OffsetTracker()
    attempts: list[dict[Partition, int]] = []

    def commit(offsets: Any) -> None:
        attempts.append(dict(offsets))
        if len(attempts) == 1:
            raise CommitFailed("rebalance in progress")

    step = CommitOffsets(tracker, commit, commit_interval_s=0, clock=clock)
    tracker.track(P0, 0)
    step.submit(msg(None, 0))
    step.poll()
    step.poll()
    step.poll()
    assert attempts == [{P0: 1}, {P0: 1}]


def test_commit_ignores_revoked_messages() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    lease = Lease(P0)
    lease.revoke()
    commits: list[Any] = []
    step = CommitOffsets(tracker, commits.append, commit_interval_s=0)
    step.submit(msg(None, 0, lease=lease))
    step.poll()
    assert commits == [{P0: 0}]  # offset 0 was not completed


def test_produce_then_commit_never_commits_unacked_outputs() -> None:
    tracker = OffsetTracker()
    commits: list[dict[Partition, int]] = []
    producer = FakeProducer()
    step = Produce(producer, CommitOffsets(tracker, commits.append, commit_interval_s=0))
    for offset in range(3):
        tracker.track(P0, offset)
        step.submit(msg(records("out"), offset))
    producer.sent[1][2].ack()
    producer.sent[2][2].ack()
    step.poll()
    assert commits == [{P0: 0}]  # offsets 1, 2 acked, but 0 is not
    producer.sent[0][2].ack()
    step.poll()
    assert commits[-1] == {P0: 3}


# --- TransactionalProduceAndCommit ---------------------------------------------


def test_transaction_sequence_and_offsets() -> None:
    clock = FakeClock()
    tracker = OffsetTracker()
    producer = FakeProducer(auto_ack=True)
    step = TransactionalProduceAndCommit(
        producer, tracker, lambda: "group-metadata", commit_interval_s=1.0, clock=clock
    )
    assert producer.calls == ["init_transactions"]
    for offset in range(3):
        tracker.track(P0, offset)
    tracker.track(P1, 7)
    step.submit(msg(records("out"), 0))
    step.submit(msg(records("out", "dlq"), 1))
    step.submit(msg([], 7, partition=P1))
    step.poll()
    assert producer.calls == ["init_transactions"]  # interval not reached
    clock.now += 1.0
    step.poll()
    assert producer.calls == [
        "init_transactions",
        "begin_transaction",
        "send:out",
        "send:out",
        "send:dlq",
        "flush",
        "send_offsets_to_transaction",
        "commit_transaction",
    ]
    assert producer.offsets == {TopicPartition("in", 0): 2, TopicPartition("in", 1): 8}
    assert producer.group_metadata == "group-metadata"
    assert step.transactions == 1


def test_transaction_aborts_and_raises_on_failure() -> None:
    tracker = OffsetTracker()
    producer = FakeProducer(
        auto_ack=True,
        fail_on=lambda name: RuntimeError("fenced") if name == "commit_transaction" else None,
    )
    step = TransactionalProduceAndCommit(producer, tracker, lambda: None, commit_interval_s=0)
    tracker.track(P0, 0)
    step.submit(msg(records("out"), 0))
    with pytest.raises(RuntimeError, match="fenced"):
        step.poll()
    assert producer.calls[-2:] == ["commit_transaction", "abort_transaction"]


def test_transaction_send_failure_aborts() -> None:
    tracker = OffsetTracker()
    producer = FakeProducer()
    step = TransactionalProduceAndCommit(producer, tracker, lambda: None, commit_interval_s=0)
    tracker.track(P0, 0)
    step.submit(msg(records("out"), 0))
    producer.flush = lambda timeout=None: producer.sent[0][2].fail(OSError("broker gone"))  # type: ignore[method-assign]
    with pytest.raises(ProduceFailed):
        step.poll()
    assert producer.calls[-1] == "abort_transaction"
    assert "commit_transaction" not in producer.calls


def test_transaction_batch_limit_rejects_and_drops_revoked() -> None:
    tracker = OffsetTracker()
    producer = FakeProducer(auto_ack=True)
    step = TransactionalProduceAndCommit(
        producer, tracker, lambda: None, commit_interval_s=3600, max_messages=2
    )
    lease = Lease(P0)
    for offset in range(3):
        tracker.track(P0, offset)
    tracker.track(P1, 0)
    step.submit(msg(records("out"), 0, lease=lease))
    step.submit(msg(records("out"), 0, partition=P1))
    with pytest.raises(MessageRejected):
        step.submit(msg(records("out"), 1))
    lease.revoke()
    tracker.forget([P0])
    step.poll()  # full: commits now, without the revoked message
    assert producer.calls.count("send:out") == 1
    assert producer.offsets == {TopicPartition("in", 1): 1}


def test_transaction_holds_out_of_order_messages_until_the_gap_closes() -> None:
    """Records of a message above its partition's watermark would be committed
    without its offset, and produced again by whoever re-consumes it: held back."""
    tracker = OffsetTracker()
    producer = FakeProducer(auto_ack=True)
    step = TransactionalProduceAndCommit(producer, tracker, lambda: None, commit_interval_s=0)
    for offset in range(3):
        tracker.track(P0, offset)
    step.submit(msg(records("out"), 2))
    step.submit(msg(records("out"), 1))
    step.poll()
    assert "begin_transaction" not in producer.calls  # offset 0 is still in flight
    step.submit(msg(records("out"), 0))
    step.poll()
    assert producer.calls.count("begin_transaction") == 1
    assert producer.calls.count("send:out") == 3
    assert producer.offsets == {TopicPartition("in", 0): 3}


def test_transaction_drops_held_messages_of_revoked_partitions() -> None:
    tracker = OffsetTracker()
    producer = FakeProducer(auto_ack=True)
    step = TransactionalProduceAndCommit(producer, tracker, lambda: None, commit_interval_s=0)
    lease = Lease(P0)
    tracker.track(P0, 0)
    tracker.track(P0, 1)
    step.submit(msg(records("out"), 1, lease=lease))
    step.poll()
    lease.revoke()
    tracker.forget([P0])
    step.close()
    step.join()
    assert "begin_transaction" not in producer.calls


def test_transaction_waits_while_the_member_rejoins_the_group() -> None:
    """Offsets sent during a rejoin carry the old generation: IllegalGeneration, a crash."""
    from kafka.structs import ConsumerGroupMetadata, MemberState

    tracker = OffsetTracker()
    producer = FakeProducer(auto_ack=True)
    state = [MemberState.REBALANCING]
    step = TransactionalProduceAndCommit(
        producer,
        tracker,
        lambda: ConsumerGroupMetadata("g", 3, "m", None, state[0]),
        commit_interval_s=0,
    )
    tracker.track(P0, 0)
    step.submit(msg(records("out"), 0))
    step.poll()
    assert "begin_transaction" not in producer.calls
    state[0] = MemberState.STABLE
    step.poll()
    assert producer.calls.count("commit_transaction") == 1
