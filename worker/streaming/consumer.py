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
  the worker hangs silently, still "running". ``_StallWatchdog`` turns that
  into a ``KafkaClientStalled`` error (see there).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import MemberState

from worker.streaming.exceptions import CommitFailed, MessageRejected, StreamingError
from worker.streaming.kafka_compat import (
    rejoin_if_join_lost,
    release_drained_partition_records,
)
from worker.streaming.offsets import OffsetTracker
from worker.streaming.types import Commit, Lease, Message, Partition, ProcessingStep

log = structlog.get_logger(__name__)

#: What the first step receives: the record value (no deserializer configured).
KafkaPayload = bytes | None


def kafka_commit(consumer: Any, *, timeout_ms: int = 30_000) -> Commit:
    """A ``Commit`` for ``CommitOffsets``: synchronous ``consumer.commit``.

    Must be called from the consumer loop's thread (never from a rebalance
    callback). Group-membership races and retriable errors (broker unreachable,
    coordinator moving, timeouts) are mapped to ``CommitFailed``: logged and
    retried later by the step, so a broker restart does not stop the worker.
    Other errors, e.g. a fenced static member, propagate.
    """

    def commit(offsets: Mapping[Partition, int]) -> None:
        try:
            with _guarded(consumer, "commit", timeout_ms / 1000):
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


class KafkaClientStalled(StreamingError):
    """A kafka-python consumer call outlived its own timeout by ``stall_timeout_s``.

    Its I/O thread is dead or wedged: the client cannot recover, so the
    processor stops with this error (the process should exit non-zero and be
    restarted) instead of hanging.
    """


def _stack_of(thread: threading.Thread | None, limit: int = 12) -> str:
    frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
    return "".join(traceback.format_stack(frame, limit=limit)) if frame else "<not running>"


class _StallWatchdog:
    """Turns a kafka-python call that never returns into ``KafkaClientStalled``.

    The loop thread wraps each blocking consumer call (``poll``, ``commit``,
    ``close``) in ``guard(what, timeout_s)``, ``timeout_s`` being the timeout
    the call was given. A daemon thread checks about once a second; a call
    still running ``stall_timeout_s`` after its own timeout, or running while
    the I/O thread is dead, is a wedged client. The watchdog then logs both
    threads' stacks and fails the client's pending ``run()`` waiters the way
    kafka-python does itself when its loop crashes
    (``NetworkSelector._fail_pending_waiters``, private, read defensively), so
    the blocked call raises ``KafkaClientStalled`` in the loop thread. Blocked
    elsewhere (a fake client, another kafka-python version), the call raises it
    as soon as it returns.
    """

    def __init__(self, consumer: Any, stall_timeout_s: float) -> None:
        self._net: Any = getattr(consumer, "_net", None)
        self._stall_timeout_s = stall_timeout_s
        self._lock = threading.Lock()
        # (what, deadline, calling thread) of the call in progress, if any.
        self._call: tuple[str, float, threading.Thread] | None = None
        self.error: KafkaClientStalled | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._watch, name="stream-stall-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _io_thread(self) -> threading.Thread | None:
        thread = getattr(self._net, "_io_thread", None)
        return thread if isinstance(thread, threading.Thread) else None

    def _io_thread_died(self) -> bool:
        io = self._io_thread()
        if io is None or io.is_alive():
            return False
        # A loop that crashed with an exception is reported by kafka-python
        # itself (run() re-raises it): only a silent death is ours to report.
        return getattr(self._net, "_exception", None) is None

    @contextmanager
    def guard(self, what: str, timeout_s: float) -> Iterator[None]:
        if self.error is not None:
            raise self.error
        if self._io_thread_died():
            self.error = KafkaClientStalled(
                f"consumer.{what}(): the kafka-python I/O thread is dead"
            )
            raise self.error
        deadline = time.monotonic() + timeout_s + self._stall_timeout_s
        with self._lock:
            self._call = (what, deadline, threading.current_thread())
        try:
            yield
        finally:
            with self._lock:
                self._call = None
        if self.error is not None:
            raise self.error  # fired while the call was returning by itself

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self._stall_timeout_s / 4)):
            with self._lock:
                call = self._call
            if call is None or self.error is not None:
                continue
            what, deadline, caller = call
            dead = self._io_thread_died()
            if not dead and time.monotonic() < deadline:
                continue
            io = self._io_thread()
            self.error = KafkaClientStalled(
                f"consumer.{what}() still blocked {self._stall_timeout_s:.0f}s after its "
                f"timeout; kafka-python I/O thread "
                f"{'dead' if dead else 'alive' if io is not None else 'unknown'}"
            )
            log.error(
                "kafka client stalled: failing the blocked call",
                call=what,
                io_thread_stack=_stack_of(io),
                caller_stack=_stack_of(caller),
            )
            fail = getattr(self._net, "_fail_pending_waiters", None)
            if callable(fail):
                fail(self.error)


# Watchdog of the StreamProcessor running on a consumer, by id(consumer), for
# kafka_commit() which only knows the consumer.
_watchdogs: dict[int, _StallWatchdog] = {}


@contextmanager
def _guarded(consumer: Any, what: str, timeout_s: float) -> Iterator[None]:
    watchdog = _watchdogs.get(id(consumer))
    if watchdog is None:
        yield
    else:
        with watchdog.guard(what, timeout_s):
            yield


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


class _Listener(ConsumerRebalanceListener):
    """Runs on kafka-python's I/O thread: only records events for the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, frozenset[Partition]]] = []

    def _add(self, kind: str, partitions: Iterable[Any]) -> None:
        parts = frozenset(Partition(tp.topic, tp.partition) for tp in partitions)
        with self._lock:
            self._events.append((kind, parts))

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._add("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._add("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        # Membership was lost (e.g. session timeout): the partitions may
        # already belong to someone else, so their offsets must not be committed.
        self._add("lost", lost)

    def drain(self) -> list[tuple[str, frozenset[Partition]]]:
        with self._lock:
            events, self._events = self._events, []
        return events


class StreamProcessor:
    """Consume ``topics`` with ``consumer`` and feed the records to ``step``.

    ``consumer`` is a ``KafkaConsumer`` with a ``group_id``, no deserializers
    and ``enable_auto_commit=False`` (see ``kafka_config.consumer_kwargs``);
    the processor subscribes it. ``tracker`` must be the tracker the terminal
    step completes offsets in. ``commit`` (at-least-once mode) is used to commit
    the finished prefix of revoked partitions; leave it None in transactional
    mode, where offsets are only committed inside transactions.

    ``producer`` (optional) is closed at the end, after the steps are joined.

    ``stall_timeout_s``: a consumer call (poll, commit, close) still blocked
    this long after its own timeout means kafka-python's I/O thread is dead or
    wedged; run() then fails with ``KafkaClientStalled`` instead of hanging.

    Backpressure: while the partitions are paused, ``poll()`` runs only every
    ``poll_timeout_ms`` and with a zero timeout (kafka-python sleeps up to the
    timeout when every partition is paused); in between, the loop waits for
    ``wakeup`` (at most ``backpressure_wait_ms``) and feeds the steps. Steps
    that own threads set ``wakeup`` when work finishes (``RunTaskInThreads``/
    ``RunBatchesInThread`` ``wakeup=``), so room freed downstream is used at
    once; without it the wait simply times out.
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
        self._stall_timeout_s = stall_timeout_s
        self._wakeup = wakeup if wakeup is not None else threading.Event()
        self._backpressure_wait_s = backpressure_wait_ms / 1000
        self._polled_at = 0.0
        self._watchdog = _StallWatchdog(consumer, stall_timeout_s)
        self._listener = _Listener()
        self._leases: dict[Partition, Lease] = {}
        self._pending: deque[Message[KafkaPayload]] = deque()
        self._backpressure = False
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
        self._watchdog = _StallWatchdog(self._consumer, self._stall_timeout_s)
        _watchdogs[id(self._consumer)] = self._watchdog  # for kafka_commit()
        self._watchdog.start()
        try:
            self._run(max_messages, until, handle_signals)
        finally:
            _watchdogs.pop(id(self._consumer), None)
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
            except BaseException:
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
            if self._backpressure and self._pending:
                # Paused and the steps are full: wait until one of them finishes
                # something (or briefly, for steps that do not signal).
                self._wakeup.wait(self._backpressure_wait_s)

    def _poll_due(self) -> bool:
        """Whether to call ``consumer.poll()`` this turn.

        Always, unless the partitions are paused: then it returns nothing, and each
        call is a round trip through kafka-python's I/O thread (costly when the
        GIL is busy), so while the loop turns on the steps' wakeups it polls only
        every ``poll_timeout_ms`` - or at once when a group join is in flight.
        """
        if not self._backpressure:
            return True
        elapsed_ms = (time.monotonic() - self._polled_at) * 1000
        return elapsed_ms >= self._poll_timeout_ms or self._rebalancing()

    def _next_poll_timeout_ms(self) -> int:
        if self._rebalancing():
            # While a join is in flight, wait for it inside poll(): kafka-python
            # 3.0.12 discards a join that completes between two poll() calls
            # and sends a new JoinGroup (another rebalance round for everyone).
            return self._rebalance_poll_timeout_ms
        if self._backpressure:
            # No wait in poll(): with every partition paused kafka-python would
            # sleep the whole timeout; the loop waits for the steps instead.
            return 0
        return self._poll_timeout_ms

    def _rebalancing(self) -> bool:
        group_metadata = getattr(self._consumer, "group_metadata", None)
        return group_metadata is not None and group_metadata().state == MemberState.REBALANCING

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
                self._pause()
                return
            pending.popleft()
            self.stats.submitted += 1
        if self._backpressure:
            self._resume()

    def _pause(self) -> None:
        # Pause everything assigned (arroyo does the same): simpler than
        # tracking per-partition pressure, and newly assigned partitions get
        # paused on the next rejection round too.
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(*assignment)
        if not self._backpressure:
            self._backpressure = True
            self.stats.pauses += 1
            log.debug("backpressure: partitions paused", pending=len(self._pending))

    def _resume(self) -> None:
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        self._backpressure = False
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
