"""OffsetTracker: watermarks over out-of-order completion."""

from __future__ import annotations

import random

import pytest

from worker.streaming.exceptions import InvalidState
from worker.streaming.offsets import OffsetTracker
from worker.streaming.types import Partition

A = Partition("t", 0)
B = Partition("t", 1)


def test_empty() -> None:
    tracker = OffsetTracker()
    assert tracker.committable() == {}
    assert tracker.in_flight == 0
    assert tracker.partitions == frozenset()


def test_in_order_completion_moves_watermark() -> None:
    tracker = OffsetTracker()
    for offset in range(5, 8):
        tracker.track(A, offset)
    assert tracker.committable() == {A: 5}  # nothing done yet: the first offset
    assert tracker.complete(A, 5)
    assert tracker.committable() == {A: 6}
    assert tracker.complete(A, 6)
    assert tracker.complete(A, 7)
    assert tracker.committable() == {A: 8}
    assert tracker.in_flight == 0


def test_out_of_order_completion_waits_for_the_gap() -> None:
    tracker = OffsetTracker()
    for offset in range(4):
        tracker.track(A, offset)
    assert tracker.complete(A, 2)
    assert tracker.complete(A, 3)
    assert tracker.committable() == {A: 0}
    assert tracker.in_flight == 2
    assert tracker.complete(A, 1)
    assert tracker.committable() == {A: 0}
    assert tracker.complete(A, 0)
    assert tracker.committable() == {A: 4}


def test_non_contiguous_offsets() -> None:
    # Transaction markers and compaction leave holes: only tracked offsets count.
    tracker = OffsetTracker()
    for offset in (10, 12, 20):
        tracker.track(A, offset)
    tracker.complete(A, 10)
    assert tracker.committable() == {A: 12}
    tracker.complete(A, 20)
    assert tracker.committable() == {A: 12}
    tracker.complete(A, 12)
    assert tracker.committable() == {A: 21}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.track(A, 0)
    tracker.track(B, 100)
    tracker.track(B, 101)
    tracker.complete(B, 100)
    assert tracker.committable() == {A: 0, B: 101}
    assert tracker.committable([B]) == {B: 101}
    assert tracker.committable([Partition("other", 0)]) == {}
    assert tracker.in_flight_for(A) == 1
    assert tracker.in_flight_for(B) == 1
    assert tracker.in_flight == 2


def test_complete_of_unknown_or_done_offsets_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.track(A, 3)
    assert not tracker.complete(B, 3)  # unknown partition
    assert not tracker.complete(A, 2)  # never tracked
    assert not tracker.complete(A, 4)
    assert tracker.complete(A, 3)
    assert not tracker.complete(A, 3)  # twice
    assert tracker.committable() == {A: 4}


def test_track_must_move_forward() -> None:
    tracker = OffsetTracker()
    tracker.track(A, 5)
    with pytest.raises(InvalidState):
        tracker.track(A, 5)
    with pytest.raises(InvalidState):
        tracker.track(A, 4)


def test_forget_drops_state_and_late_completions() -> None:
    tracker = OffsetTracker()
    tracker.track(A, 0)
    tracker.track(A, 1)
    tracker.track(B, 0)
    tracker.complete(A, 0)
    tracker.forget([A])
    assert tracker.committable() == {B: 0}
    assert not tracker.complete(A, 1)  # late completion of revoked work
    assert tracker.partitions == frozenset({B})
    # Re-assigned later: starts over from whatever is consumed then, even lower.
    tracker.track(A, 0)
    assert tracker.committable([A]) == {A: 0}


def test_memory_is_bounded_by_in_flight() -> None:
    tracker = OffsetTracker()
    for offset in range(10_000):
        tracker.track(A, offset)
        tracker.complete(A, offset)
    state = tracker._partitions[A]
    assert len(state.order) == 0 and not state.in_flight
    assert tracker.committable() == {A: 10_000}


def _naive_watermark(tracked: list[int], done: set[int]) -> int:
    for offset in tracked:
        if offset not in done:
            return offset
    return tracked[-1] + 1


@pytest.mark.parametrize("seed", range(25))
def test_randomized_against_naive_model(seed: int) -> None:
    """Random interleavings of track/complete/committable/forget on 3 partitions
    agree with a brute-force model, and the watermark never goes backwards."""
    rng = random.Random(seed)
    partitions = [Partition("t", i) for i in range(3)]
    tracker = OffsetTracker()
    tracked: dict[Partition, list[int]] = {p: [] for p in partitions}
    done: dict[Partition, set[int]] = {p: set() for p in partitions}
    next_offset = dict.fromkeys(partitions, 0)
    last_seen: dict[Partition, int] = {}
    for _ in range(600):
        p = rng.choice(partitions)
        action = rng.random()
        if action < 0.45:
            next_offset[p] += rng.choice([1, 1, 1, 2, 5])  # holes, like txn markers
            tracker.track(p, next_offset[p])
            tracked[p].append(next_offset[p])
        elif action < 0.9:
            open_offsets = [o for o in tracked[p] if o not in done[p]]
            if open_offsets:
                offset = rng.choice(open_offsets)
                assert tracker.complete(p, offset)
                done[p].add(offset)
            elif tracked[p]:
                assert not tracker.complete(p, rng.choice(tracked[p]))
        elif action < 0.97:
            expected = {q: _naive_watermark(tracked[q], done[q]) for q in partitions if tracked[q]}
            assert tracker.committable() == expected
            for q, offset in expected.items():
                assert offset >= last_seen.get(q, -1)
                last_seen[q] = offset
        else:
            tracker.forget([p])
            tracked[p], done[p] = [], set()
            last_seen.pop(p, None)
        expected_in_flight = sum(len(tracked[q]) - len(done[q]) for q in partitions)
        assert tracker.in_flight == expected_in_flight
    expected = {q: _naive_watermark(tracked[q], done[q]) for q in partitions if tracked[q]}
    assert tracker.committable() == expected
