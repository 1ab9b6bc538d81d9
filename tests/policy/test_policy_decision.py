"""The decision rules: thresholds, per-category blocking, band edges, observe mode."""

from __future__ import annotations

import pytest
from policy_helpers import profile

from worker.policy import decide, hash_match_decision
from worker.policy.decision import format_threshold


def action(unsafe: float, scores: dict[str, float] | None = None, **settings: object) -> str:
    return decide(profile(**settings), unsafe, scores or {}, "evt-1").action


def test_builtin_rule_is_todays_threshold() -> None:
    assert action(0.49) == "allow"
    assert action(0.5) == "block"  # >= the threshold, as the verdict
    assert action(0.7, unsafe_threshold=0.8) == "allow"
    assert decide(profile(), 0.9, {}, "e").reasons == ("unsafe_score>=0.50",)
    assert decide(profile(), 0.1, {}, "e").reasons == ("unsafe_score<0.50",)
    assert decide(profile(unsafe_threshold=0.425), 0.5, {}, "e").reasons == ("unsafe_score>=0.425",)


def test_a_category_over_its_threshold_blocks_on_its_own() -> None:
    thresholds = {"S1": 0.10, "S10": 0.10}
    decision = decide(profile(category_thresholds=thresholds), 0.2, {"S1": 0.12, "S2": 0.08}, "e")
    assert decision.action == "block"
    assert decision.reasons == ("S1>=0.10",)
    assert action(0.2, {"S1": 0.0999, "S2": 0.1}, category_thresholds=thresholds) == "allow"
    assert action(0.2, {"S1": 0.10}, category_thresholds=thresholds) == "block"  # edge inclusive
    both = decide(profile(category_thresholds=thresholds), 0.9, {"S10": 0.5, "S1": 0.4}, "e")
    assert both.reasons == ("S1>=0.10", "S10>=0.10", "unsafe_score>=0.50")  # by number
    # A threshold on a key the event did not list (inactive) never fires.
    assert action(0.2, {"S2": 0.2}, category_thresholds={"S1": 0.01}) == "allow"


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.29999, "allow"),
        (0.30, "review"),  # low is inclusive
        (0.55, "review"),  # over unsafe_threshold but in the band: people decide
        (0.69999, "review"),
        (0.70, "block"),  # high is exclusive: the usual rule decides
        (0.95, "block"),
    ],
)
def test_review_band_edges(score: float, expected: str) -> None:
    assert action(score, review_band=[0.30, 0.70]) == expected


def test_band_above_the_threshold_and_category_blocks_win_over_the_band() -> None:
    assert action(0.75, review_band=[0.6, 0.8], unsafe_threshold=0.9) == "review"
    assert action(0.85, review_band=[0.6, 0.8], unsafe_threshold=0.9) == "allow"
    settings = {"review_band": [0.3, 0.7], "category_thresholds": {"S4": 0.05}}
    decision = decide(profile(**settings), 0.4, {"S4": 0.06}, "e")
    assert (decision.action, decision.review, decision.reasons) == ("block", None, ("S4>=0.05",))
    band = decide(profile(**settings), 0.4, {"S4": 0.04}, "e")
    assert (band.action, band.review, band.reasons) == ("review", "band", ("review_band",))


def test_observe_mode_allows_and_says_what_enforce_would_do() -> None:
    observe = {"mode": "observe", "review_band": [0.3, 0.7], "category_thresholds": {"S1": 0.1}}
    blocked = decide(profile(**observe), 0.9, {}, "e")
    assert (blocked.action, blocked.would_action) == ("allow", "block")
    assert blocked.reasons == ("unsafe_score>=0.50", "observe")
    assert blocked.review is None
    banded = decide(profile(**observe), 0.4, {}, "e")
    assert (banded.action, banded.would_action, banded.review) == ("allow", "review", None)
    by_category = decide(profile(**observe), 0.2, {"S1": 0.15}, "e")
    assert by_category.would_action == "block" and by_category.reasons == ("S1>=0.10", "observe")
    allowed = decide(profile(**observe), 0.1, {}, "e")
    assert (allowed.action, allowed.would_action) == ("allow", "allow")
    # Enforce mode never sets would_action.
    assert decide(profile(), 0.9, {}, "e").would_action is None


def test_audit_samples_allowed_events_only() -> None:
    always = profile(audit_sample_rate=1.0)
    allowed = decide(always, 0.1, {}, "e")
    assert (allowed.action, allowed.review) == ("allow", "audit")
    assert allowed.reasons == ("unsafe_score<0.50", "audit")
    assert decide(always, 0.9, {}, "e").review is None  # blocked: not audited
    banded = decide(profile(audit_sample_rate=1.0, review_band=[0.3, 0.7]), 0.4, {}, "e")
    assert (banded.action, banded.review, banded.reasons) == ("review", "band", ("review_band",))
    # Observe: every action is allow, so any event may be audited.
    observed = decide(profile(audit_sample_rate=1.0, mode="observe"), 0.9, {}, "e")
    assert (observed.action, observed.would_action, observed.review) == ("allow", "block", "audit")
    assert observed.reasons == ("unsafe_score>=0.50", "observe", "audit")
    assert decide(profile(), 0.1, {}, "e").review is None  # rate 0


def test_format_threshold() -> None:
    assert [format_threshold(v) for v in (0.5, 0.1, 0.05, 1.0, 0.0, 0.425)] == [
        "0.50",
        "0.10",
        "0.05",
        "1.00",
        "0.00",
        "0.425",
    ]


def test_the_example_kids_profile_as_the_readme_says() -> None:
    from policy_helpers import EXAMPLE

    from worker.policy import load_policy_file

    kids = load_policy_file(EXAMPLE).tenants["kids"]
    assert [decide(kids, s, {}, "never-sampled").action for s in (0.1499, 0.15, 0.2999, 0.30)] == [
        "allow",
        "review",
        "review",
        "block",
    ]
    child_safety = decide(kids, 0.2, {"S4": 0.06}, "e")
    assert (child_safety.action, child_safety.reasons) == ("block", ("S4>=0.05",))


def test_a_hash_match_blocks_naming_each_bank_once() -> None:
    decision = hash_match_decision(profile(), ["b", "a", "b"])
    assert (decision.action, decision.reasons) == ("block", ("hash_match:a", "hash_match:b"))
    assert (decision.would_action, decision.review) == (None, None)
    observed = hash_match_decision(profile(mode="observe"), ["a"])
    assert (observed.action, observed.would_action) == ("allow", "block")
    assert observed.reasons == ("hash_match:a", "observe")
