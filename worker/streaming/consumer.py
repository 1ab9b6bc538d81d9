"""StreamProcessor: the consumer loop that drives a chain of steps.

kafka-python 3 facts this loop is built on (verified in its source, 3.0.12):

* The consumer runs its network I/O, heartbeats *and rebalance-listener
  callbacks* on a background ``kafka-io-<client_id>`` thread; the thread that
  called ``poll()`` blocks until the rebalance step finishes.
  ``KafkaConsumer.commit()`` from a (sync) listener raises ``RuntimeError``
  ("Cannot block on net.run() from the IO thread itself") - so the listener
  here only *records* what happened, and this loop handles it in its own thread
  right after ``poll()`` returns.
* Heartbeats are sent by the I/O thread; ``max_poll_interval_ms`` is enforced
  against calls to ``KafkaConsumer.poll()``. Polling with every partition
  paused returns no records but still counts, so the loop keeps polling while
  steps are busy or full.
* ``cooperative-sticky`` (``CooperativeStickyAssignor``, KIP-429) is supported:
  a rebalance only revokes the partitions that move. The revoke callback runs
  after SyncGroup, and the moved partitions are handed to their new owner only
  in a follow-up rebalance that this member joins on its *next* ``poll()`` -
  so committing right after ``poll()`` returns still happens before the new
  owner can start.
* Two bugs that would stall the loop for good are worked around right after
  each ``poll()``; see ``kafka_compat`` (a group join left unapplied, records
  of a paused partition never handed back).
* Every blocking call (``poll``, ``commit``, ``close``) hands a coroutine to the
  I/O thread and then waits for it on a ``threading.Event`` *without a timeout*
  (``NetworkSelector.run``): ``timeout_ms`` only bounds the coroutine. If the
  I/O loop stops running it (thread dead or wedged), the call never returns and
  the worker hangs silently, still "running". ``StallWatchdog`` turns that
  into a ``KafkaClientStalled`` error (``worker.streaming.watchdog``).

Longer than the project's ~400 lines on purpose: the loop, its pausing and its
rebalance handling share the pending queue and the leases, and read best together.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
from kafka.errors import AuthorizationError, SaslAuthenticationFailedError
from kafka.structs import MemberState

from worker.streaming.exceptions import CommitFailed, MessageRejected
from worker.streaming.kafka_compat import (
    rejoin_if_join_lost,
    release_drained_partition_records,
)
from worker.streaming.offsets import OffsetTracker
from worker.streaming.rebalance import RebalanceEvents
from worker.streaming.types import Commit, Lease, Message, Partition, ProcessingStep
from worker.streaming.watchdog import StallWatchdog

log = structlog.get_logger(__name__)

#: What the first step receives: the record value (no deserializer configured).
KafkaPayload = bytes | None


def _denied(exc: BaseException | None) -> bool:
    """An authorization error from the broker, or one wrapped (``ProduceFailed``)."""
    while exc is not None:
        if isinstance(exc, AuthorizationError | SaslAuthenticationFailedError):
            return True
        exc = exc.__cause__
    return False


@dataclass
class ProcessorStats:
    consumed: int = 0
    """Records taken from poll() and tracked."""
    submitted: int = 0
    """Records accepted by the first step."""
    rejected: int = 0
    """MessageRejected answers from the first step (retried later)."""
    pauses: int = 0
    """Times the loop paused the partitions for backpressure."""
    dropped: int = 0
    """Pending records dropped because their partition was revoked or lost."""
    assigned: int = 0
    revoked: int = 0
    lost: int = 0


class StreamProcessor:
    """Consume ``topics`` with ``consumer`` and feed the records to ``step``.

    ``consumer`` is a driver consumer (``worker.streaming.drivers``; a
    ``KafkaConsumer`` as it is) with a ``group_id``, no deserializers and
    ``enable_auto_commit=False`` (see ``kafka_config.consumer_kwargs``);
    the processor subscribes it. ``tracker`` must be the tracker the terminal
    step completes offsets in. ``commit`` (at-least-once mode) is used to commit
    the finished prefix of revoked partitions; leave it None in transactional
    mode, where offsets are only committed inside transactions.

    ``producer`` (optional) is closed at the end, after the steps are joined.

    ``stall_timeout_s``: a consumer call (poll, commit, close) still blocked
    this long after its own timeout means kafka-python's I/O thread is dead or
    wedged; run() then fails with ``KafkaClientStalled`` instead of hanging.
    Pass ``watchdog`` (built on the same consumer) to share it with
    ``kafka_commit(consumer, watchdog=...)``; by default the processor makes its own.

    Backpressure: a record the first step rejects is held (with the rest of its poll)
    and re-offered; meanwhile the loop does not poll, so it never holds more than one
    poll's records. Only when the steps stay full for ``pause_after_ms`` are the
    partitions paused (arroyo does the same): pausing is not free. librdkafka drops a
    paused partition's fetched messages and fetches them again on resume, and a
    model-bound pipeline is full for a moment after nearly every poll, so pausing at
    the first rejection made the confluent driver wait for re-fetches most of the time
    (1,650 vs 5,000 events/s, ``bench overhead --driver confluent``). While the
    partitions are paused, ``poll()`` runs only every ``poll_timeout_ms`` and with a
    zero timeout (kafka-python sleeps up to the timeout when every partition is
    paused); it keeps the member alive (``max_poll_interval_ms``). In between, the
    loop waits for ``wakeup`` (at most ``backpressure_wait_ms``) and feeds the steps.
    Steps that own threads set ``wakeup`` when work finishes (``RunTaskInThreads``/
    ``RunBatchesInThread`` ``wakeup=``), so room freed downstream is used at once;
    without it the wait simply times out.
    """

    def __init__(
        self,
        consumer: Any,
        topics: Sequence[str],
        step: ProcessingStep[KafkaPayload],
        tracker: OffsetTracker,
        *,
        commit: Commit | None = None,
        producer: Any = None,
        poll_timeout_ms: int = 50,
        rebalance_poll_timeout_ms: int = 500,
        join_timeout_s: float = 30.0,
        close_timeout_s: float = 10.0,
        stall_timeout_s: float = 60.0,
        wakeup: threading.Event | None = None,
        backpressure_wait_ms: int = 10,
        pause_after_ms: int = 1000,
        watchdog: StallWatchdog | None = None,
    ) -> None:
        self._consumer = consumer
        self._topics = list(topics)
        self._step = step
        self._tracker = tracker
        self._commit = commit
        self._producer = producer
        self._poll_timeout_ms = poll_timeout_ms
        self._rebalance_poll_timeout_ms = rebalance_poll_timeout_ms
        self._join_timeout_s = join_timeout_s
        self._close_timeout_s = close_timeout_s
        self._wakeup = wakeup if wakeup is not None else threading.Event()
        self._backpressure_wait_s = backpressure_wait_ms / 1000
        self._pause_after_s = pause_after_ms / 1000
        self._polled_at = 0.0
        self._watchdog = watchdog or StallWatchdog(consumer, stall_timeout_s)
        # A driver that calls back inside poll(), in this thread, gets its events
        # handled at once (commit-on-revoke before the partitions are given up).
        inline = getattr(consumer, "rebalance_callbacks_in_poll_thread", False) is True
        self._listener = RebalanceEvents(self._handle_rebalance_events if inline else None)
        self._listener_inline = inline
        self._leases: dict[Partition, Lease] = {}
        self._pending: deque[Message[KafkaPayload]] = deque()
        self._rejected_at: float | None = None  # first rejection of this backpressure spell
        self._paused = False  # the partitions are paused for backpressure
        self._stop = threading.Event()
        self._signal: int | None = None
        self.stats = ProcessorStats()

    # --- control ---------------------------------------------------------------

    def stop(self) -> None:
        """Ask run() to shut down gracefully. Thread- and signal-safe."""
        self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only take note: the handler runs between two bytecodes of this thread,
        # maybe inside a log call that holds the log stream's (non-reentrant)
        # lock; logging from here would deadlock the worker. _shutdown() logs it.
        self._signal = signum
        self._stop.set()

    def run(
        self,
        *,
        max_messages: int | None = None,
        until: Callable[[], bool] | None = None,
        handle_signals: bool = True,
    ) -> ProcessorStats:
        """Run until stopped (SIGTERM/SIGINT, ``stop()``, ``until()`` true, or
        ``max_messages`` records consumed), then shut down gracefully: join the
        steps (finishing in-flight work, final commit), close the producer and
        the consumer. An exception from a step terminates the steps, closes the
        clients *without* committing anything more, and propagates.
        """
        self._watchdog.start()
        try:
            self._run(max_messages, until, handle_signals)
        finally:
            self._watchdog.stop()
        return self.stats

    def _run(
        self, max_messages: int | None, until: Callable[[], bool] | None, handle_signals: bool
    ) -> None:
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        self._consumer.subscribe(topics=self._topics, listener=self._listener)
        try:
            try:
                self._loop(max_messages, until)
            except BaseException as exc:
                if _denied(exc):  # a missing ACL, not a bug: the reason without a stack
                    log.error(
                        "stream processor failed; terminating without commit", error=repr(exc)
                    )
                else:
                    log.exception("stream processor failed; terminating without commit")
                self._step.terminate()
                self._close_clients()
                raise
        finally:
            # Restored before draining: a second SIGINT during a long join
            # then interrupts it the usual way.
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._shutdown()

    # --- the loop --------------------------------------------------------------

    def _loop(self, max_messages: int | None, until: Callable[[], bool] | None) -> None:
        consumer = self._consumer
        while not self._stop.is_set():
            if until is not None and until():
                break
            full = max_messages is not None and self.stats.consumed >= max_messages
            if full and not self._pending:
                break
            # Cleared before the steps look for finished work: a wakeup from
            # now on is a reason not to wait below.
            self._wakeup.clear()
            self._step.poll()
            self._submit_pending()
            if self._poll_due():
                # Paused or not, poll: it keeps the member alive (max_poll_interval_ms).
                timeout_ms = self._next_poll_timeout_ms()
                with self._watchdog.guard("poll", timeout_ms / 1000):
                    records = consumer.poll(timeout_ms=timeout_ms)
                self._polled_at = time.monotonic()
                rejoin_if_join_lost(consumer)
                release_drained_partition_records(consumer)
                self._handle_rebalance_events()
                if records:
                    self._take(records, max_messages)
                    self._submit_pending()
            if self._rejected_at is not None and self._pending:
                # The steps are full: wait until one of them finishes something
                # (or briefly, for steps that do not signal).
                self._wakeup.wait(self._backpressure_wait_s)

    def _poll_due(self) -> bool:
        """Whether to call ``consumer.poll()`` this turn.

        Always, unless the steps are full: before the partitions are paused a poll
        would only add records to those held; once they are paused it returns
        nothing, and each call is a round trip through kafka-python's I/O thread
        (costly when the GIL is busy), so while the loop turns on the steps' wakeups
        it polls only every ``poll_timeout_ms``. At once when a group join is in flight.
        """
        if self._rejected_at is None:
            return True
        if not self._paused:
            return self._rebalancing()
        elapsed_ms = (time.monotonic() - self._polled_at) * 1000
        return elapsed_ms >= self._poll_timeout_ms or self._rebalancing()

    def _next_poll_timeout_ms(self) -> int:
        if self._rebalancing():
            # While a join is in flight, wait for it inside poll(): kafka-python
            # 3.0.12 discards a join that completes between two poll() calls
            # and sends a new JoinGroup (another rebalance round for everyone).
            return self._rebalance_poll_timeout_ms
        if self._paused:
            # No wait in poll(): with every partition paused kafka-python would
            # sleep the whole timeout; the loop waits for the steps instead.
            return 0
        return self._poll_timeout_ms

    def _rebalancing(self) -> bool:
        # kafka-python's group metadata carries the member state; other drivers' do not
        # (librdkafka rebalances inside poll(), which the loop cannot see into).
        group_metadata = getattr(self._consumer, "group_metadata", None)
        if group_metadata is None or self._listener_inline:
            return False
        return getattr(group_metadata(), "state", None) == MemberState.REBALANCING

    def _take(self, records: Mapping[Any, list[Any]], max_messages: int | None) -> None:
        assigned = {Partition(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for tp, batch in records.items():
            partition = Partition(tp.topic, tp.partition)
            if partition not in assigned:
                continue  # revoked during the poll that returned it
            lease = self._leases.get(partition)
            if lease is None:
                lease = self._leases[partition] = Lease(partition)
            for record in batch:
                if max_messages is not None and self.stats.consumed >= max_messages:
                    # Untracked, so never committed: re-consumed by the next run.
                    return
                self._tracker.track(partition, record.offset)
                self.stats.consumed += 1
                self._pending.append(
                    Message(
                        payload=record.value,
                        partition=partition,
                        offset=record.offset,
                        timestamp=record.timestamp,
                        key=record.key,
                        value=record.value,
                        headers=tuple(record.headers or ()),
                        lease=lease,
                    )
                )

    def _submit_pending(self) -> None:
        pending = self._pending
        while pending:
            message = pending[0]
            if message.revoked:
                pending.popleft()
                self.stats.dropped += 1
                continue
            try:
                self._step.submit(message)
            except MessageRejected:
                self.stats.rejected += 1
                now = time.monotonic()
                if self._rejected_at is None:
                    self._rejected_at = now
                if self._paused or now - self._rejected_at >= self._pause_after_s:
                    self._pause()
                return
            pending.popleft()
            self.stats.submitted += 1
        self._rejected_at = None
        if self._paused:
            self._resume()

    def _pause(self) -> None:
        # Pause everything assigned (arroyo does the same): simpler than
        # tracking per-partition pressure, and newly assigned partitions get
        # paused on the next rejection round too.
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(*assignment)
        if not self._paused:
            self._paused = True
            self.stats.pauses += 1
            log.debug("backpressure: partitions paused", pending=len(self._pending))

    def _resume(self) -> None:
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        self._paused = False
        log.debug("backpressure released: partitions resumed")

    # --- rebalances ------------------------------------------------------------

    def _handle_rebalance_events(self) -> None:
        for kind, partitions in self._listener.drain():
            if kind == "assigned":
                self.stats.assigned += 1
                log.info("partitions assigned", partitions=sorted(map(str, partitions)))
            else:
                self._release(partitions, commit=kind == "revoked")

    def _release(self, partitions: frozenset[Partition], *, commit: bool) -> None:
        """A partition left us: stop its work, commit its finished prefix, forget it."""
        if commit:
            self.stats.revoked += 1
            # Let finished work reach the terminal step first: fewer duplicates.
            self._step.poll()
        else:
            self.stats.lost += 1
        for partition in partitions:
            lease = self._leases.pop(partition, None)
            if lease is not None:
                lease.revoke()  # steps drop its messages, even mid-flight
        before = len(self._pending)
        self._pending = deque(m for m in self._pending if m.partition not in partitions)
        self.stats.dropped += before - len(self._pending)
        offsets = self._tracker.committable(partitions)
        if commit and offsets and self._commit is not None:
            try:
                self._commit(offsets)
            except CommitFailed as exc:
                log.warning("commit of revoked partitions failed", error=str(exc))
        self._tracker.forget(partitions)
        log.info(
            "partitions revoked" if commit else "partitions lost",
            partitions=sorted(map(str, partitions)),
            committed={str(p): o for p, o in offsets.items()} if commit and self._commit else None,
        )

    # --- shutdown --------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._signal is not None:
            log.info("shutdown requested", signal=signal.Signals(self._signal).name)
        started = time.monotonic()
        self._pending.clear()  # never submitted: not done, so not committed
        try:
            self._step.close()
            self._step.join(self._join_timeout_s)
        except BaseException:
            log.exception("draining the steps failed")
            self._step.terminate()
            raise
        finally:
            self._close_clients()
        log.info("steps joined", seconds=round(time.monotonic() - started, 3))

    def _close_clients(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=self._close_timeout_s)
            except Exception as exc:
                log.warning("producer close failed", error=repr(exc))
        if self._watchdog.error is not None:
            # close() would block on the wedged I/O loop too (leave-group
            # request, then an unbounded join of the I/O thread): leave the
            # consumer to the process exit (its I/O thread is a daemon).
            log.warning("consumer not closed: its kafka-python I/O thread is stalled")
            return
        try:
            # Offsets were committed explicitly; never let close() auto-commit.
            with self._watchdog.guard("close", self._close_timeout_s):
                self._consumer.close(autocommit=False, timeout_ms=int(self._close_timeout_s * 1000))
        except Exception as exc:
            log.warning("consumer close failed", error=repr(exc))
