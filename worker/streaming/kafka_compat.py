"""Workarounds for kafka-python 3.0.x bugs that would stall a consumer for good.

Each reads private attributes defensively and is a no-op where they are missing
or never in the broken state (other or fixed kafka-python versions). Call them
from the thread that polls, right after ``poll()``.
"""

from __future__ import annotations

from typing import Any

import structlog

log = structlog.get_logger(__name__)


def release_drained_partition_records(consumer: Any) -> bool:
    """Un-stick partitions whose fetched records kafka-python parked while paused.

    kafka-python 3.0.12 (KAFKA-7548 port, ``Fetcher.fetched_records``) parks the
    parsed records of a partition that is paused mid-batch, and gives them back
    only while its in-line slot ``_next_partition_records`` is ``None``. But the
    slot is never reset to ``None`` once its records are drained: it keeps an
    empty ``PartitionRecords``. So as soon as any other, unpaused partition (one
    assigned during backpressure) has been fetched and drained, the parked
    partition is never handed back, and never fetched again either (parked
    partitions are not fetchable): it stops for good, with no error. Resetting
    an empty slot to ``None`` is what the fetcher itself does after parking.
    Returns whether the slot was reset.
    """
    fetcher: Any = getattr(consumer, "_fetcher", None)
    if not getattr(fetcher, "_paused_partition_records", None):
        return False
    current = getattr(fetcher, "_next_partition_records", None)
    if current is None or bool(current):
        return False
    fetcher._next_partition_records = None
    return True


def rejoin_if_join_lost(consumer: Any) -> bool:
    """Re-join a group whose finished join kafka-python 3.0.12 never applied.

    A rejoin triggered by a metadata change (e.g. the first join racing a
    just-created topic) whose JoinGroup/SyncGroup outlives the ``poll()``
    timeout is never applied: the leader's assignment snapshot is updated by
    the background join, so the next ``poll()`` no longer thinks a rejoin is
    pending. The member stays REBALANCING with no partitions, heartbeats stop
    and it is evicted.

    A finished join task that nobody consumed while no rejoin is pending can
    only be that bug; requesting a rejoin makes the next poll() run a fresh
    JoinGroup. Returns whether a rejoin was requested.
    """
    coordinator: Any = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if coordinator is None or task is None or getattr(task, "is_done", False) is not True:
        return False
    try:
        stuck = not coordinator.need_rejoin()
    except Exception:
        return False
    if stuck:
        log.warning("kafka-python left a finished group join unapplied; rejoining")
        coordinator.request_rejoin()
    return stuck
