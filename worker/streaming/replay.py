"""Re-drive dead letters to an input topic (``guardstream replay``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import OffsetAndMetadata, TopicPartition

from schemas.dead_letter import OMITTED, REPLAY_COUNT, STAGE, ErrorStage
from worker.streaming.dead_letters import strip_guardstream_headers
from worker.streaming.exceptions import ProduceFailed
from worker.streaming.types import OutgoingRecord, RecordFuture, send_record

log = structlog.get_logger(__name__)


@dataclass
class ReplayResult:
    scanned: int = 0
    """Dead letters read."""
    replayed: int = 0
    """Written to the target topic."""
    refused: int = 0
    """Already replayed ``max_replays`` times, or not a whole copy of the consumed
    record (``guardstream.omitted``): left in the DLQ."""
    skipped: int = 0
    """Other stage than the one asked for."""
    stopped_early: bool = False
    """True when ``limit`` or ``idle_timeout_s`` ended the scan before the end offsets."""


def _replay_count(headers: list[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == REPLAY_COUNT:
            try:
                return int(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return 0
    return 0


def _stage(headers: list[tuple[str, bytes]]) -> str | None:
    for name, value in headers:
        if name == STAGE:
            return value.decode("utf-8", errors="replace")
    return None


def replay_dead_letters(
    consumer_factory: Callable[[], Any],
    producer: Any,
    from_topic: str,
    to_topic: str,
    stage: ErrorStage | str | None = None,
    limit: int | None = None,
    max_replays: int = 3,
    *,
    idle_timeout_s: float = 30.0,
    send_timeout_s: float = 60.0,
) -> ReplayResult:
    """Copy dead letters from ``from_topic`` back to ``to_topic``.

    Each replayed record keeps the dead letter's key and value byte for byte;
    its ``guardstream.*`` headers are stripped and ``guardstream.replay.count``
    is set to one more than before. A record already replayed ``max_replays``
    times is refused (counted and logged, not replayed): it keeps failing and
    needs a human. So is a dead letter that left parts of the record out
    (``guardstream.omitted``, a record too large to copy): replaying it would
    inject a different record; the original is at its ``guardstream.original.*``. ``stage`` replays only dead letters of that stage; ``limit``
    caps the number replayed.

    ``consumer_factory()`` returns a driver's consumer (``drivers.base.AssignedConsumer``:
    assign, no subscription); ``producer`` is a driver's producer.
    With a ``group_id``, the scan resumes after the group's committed offsets and
    commits what it scanned once every replayed record is acked, so running the
    same replay twice re-drives nothing twice; without one, it scans from the
    beginning and commits nothing. The scan stops at the end
    offsets captured at start: records dead-lettered meanwhile (including the
    ones that fail again after this replay) are left for the next run.
    ``idle_timeout_s`` bounds a scan that cannot reach them (e.g. an open
    transaction under ``read_committed``). Returns the counts; a failed send
    raises ``ProduceFailed`` after the other sends finished.
    """
    wanted_stage = None if stage is None else ErrorStage(stage).value
    result = ReplayResult()
    consumer = consumer_factory()
    try:
        partitions = consumer.partitions_for_topic(from_topic) or set()
        tps = [TopicPartition(from_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        end = consumer.end_offsets(tps)
        resume = consumer.config.get("group_id") is not None
        for tp in tps:
            committed = consumer.committed(tp) if resume else None
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        remaining = {tp for tp in tps if consumer.position(tp) < end[tp]}
        scanned_up_to: dict[Any, int] = {}
        futures: list[tuple[RecordFuture, int]] = []
        last_progress = time.monotonic()
        while remaining:
            if limit is not None and result.replayed >= limit:
                result.stopped_early = True
                break
            if time.monotonic() - last_progress > idle_timeout_s:
                log.warning("replay: no progress; stopping", partitions=sorted(map(str, remaining)))
                result.stopped_early = True
                break
            batches = consumer.poll(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if tp not in remaining or record.offset >= end[tp]:
                        continue
                    if limit is not None and result.replayed >= limit:
                        # Records up to the end offsets are left unscanned.
                        result.stopped_early = True
                        break
                    last_progress = time.monotonic()
                    result.scanned += 1
                    scanned_up_to[tp] = record.offset + 1
                    headers = list(record.headers or ())
                    if wanted_stage is not None and _stage(headers) != wanted_stage:
                        result.skipped += 1
                        continue
                    if any(name == OMITTED for name, _ in headers):
                        result.refused += 1
                        log.warning(
                            "replay refused: the dead letter is not a whole copy of the record",
                            partition=record.partition,
                            offset=record.offset,
                        )
                        continue
                    count = _replay_count(headers)
                    if count >= max_replays:
                        result.refused += 1
                        log.warning(
                            "replay refused: replayed too often",
                            partition=record.partition,
                            offset=record.offset,
                            replays=count,
                            max_replays=max_replays,
                        )
                        continue
                    kept = strip_guardstream_headers(tuple(headers), keep_replay_count=False)
                    out = OutgoingRecord(
                        topic=to_topic,
                        key=record.key,
                        value=record.value,
                        headers=(*kept, (REPLAY_COUNT, str(count + 1).encode("ascii"))),
                    )
                    futures.append((send_record(producer, out), record.offset))
                    result.replayed += 1
            for tp in list(remaining):
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        producer.flush(timeout=send_timeout_s)
        failed = [(f, offset) for f, offset in futures if not f.is_done or f.failed()]
        if failed:
            future, offset = failed[0]
            raise ProduceFailed(
                f"replay of {len(failed)} dead letters failed (first: {from_topic} offset "
                f"{offset}: {future.exception!r})"
            ) from future.exception
        if resume and scanned_up_to:
            # Every scanned record is handled (replayed, refused or not of the stage
            # asked for): the next run of this group starts after it.
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in scanned_up_to.items()})
    finally:
        consumer.close()
    log.info("replay finished", **vars(result))
    return result
