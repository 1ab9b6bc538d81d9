"""Audit sampling: deterministic per event id (replays agree) and at the configured rate."""

from __future__ import annotations

import pytest
from policy_helpers import profile

from worker.policy import audit_sampled, decide, sample_point

IDS = [f"evt-{i:05d}" for i in range(10_000)]


def test_same_event_id_same_answer() -> None:
    first = [audit_sampled(i, "seed", 0.1) for i in IDS]
    again = [audit_sampled(i, "seed", 0.1) for i in IDS]
    assert first == again
    # ...also through the decision, for a fresh profile object (a reload).
    one, two = profile(audit_sample_rate=0.1), profile(audit_sample_rate=0.1)
    assert [decide(one, 0.1, {}, i).review for i in IDS[:500]] == [
        decide(two, 0.1, {}, i).review for i in IDS[:500]
    ]


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.25, 0.5])
def test_rate_within_20_percent_over_10000_ids(rate: float) -> None:
    sampled = sum(audit_sampled(i, "", rate) for i in IDS)
    assert abs(sampled - rate * len(IDS)) <= 0.2 * rate * len(IDS), sampled


def test_seed_changes_which_events_and_nested_rates_agree() -> None:
    a = {i for i in IDS if audit_sampled(i, "a", 0.1)}
    b = {i for i in IDS if audit_sampled(i, "b", 0.1)}
    assert a != b and len(a & b) < len(a) / 2
    # A higher rate samples a superset: raising the rate never un-samples an event.
    assert a <= {i for i in IDS if audit_sampled(i, "a", 0.2)}


def test_edges() -> None:
    assert not any(audit_sampled(i, "", 0.0) for i in IDS[:100])
    assert all(audit_sampled(i, "", 1.0) for i in IDS[:100])
    assert all(0.0 <= sample_point(i) < 1.0 for i in IDS[:100])
