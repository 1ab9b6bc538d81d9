"""The decision: scores + a profile → action, reasons, review lane (pure).

Rules, in order (enforce mode):
1. a category whose score ≥ its ``category_thresholds`` entry blocks on its own;
2. else an unsafe score in ``review_band`` [low, high) → ``review`` (low inclusive,
   high exclusive; at or above high, rule 3 decides);
3. else ``unsafe_score ≥ unsafe_threshold`` → ``block``, below → ``allow``.
A conversation with an image that matched a known-bad image bank is ``block`` whatever
its scores, reasons ``hash_match:<bank>`` (``hash_match_decision``).
Observe mode: the action is ``allow`` and ``would_action`` is the enforce action.
Audit: a share ``audit_sample_rate`` of ``allow`` actions (observe: every event, since
every action is allow) also goes to review, with reason ``audit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from schemas.conversation import category_number
from schemas.review import ReviewReason
from schemas.verdict import Action, VerdictEvent
from worker.policy.profiles import Profile
from worker.policy.sampling import audit_sampled
from worker.policy.settings import ProfileSettings


@dataclass(slots=True, unsafe_hash=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]
    would_action: Action | None  # observe mode only
    review: ReviewReason | None  # a ReviewRequest is due: "band" or "audit"


def decide(
    profile: Profile,
    unsafe_score: float,
    category_scores: Mapping[str, float],
    event_id: str,
) -> Decision:
    """The decision for one event. ``category_scores`` holds the event's active keys
    (per key the maximum over its images); a threshold for an inactive key never fires."""
    settings = profile.settings
    action, reasons = enforce_action(settings, unsafe_score, category_scores)
    would_action: Action | None = None
    if settings.mode == "observe":
        would_action, action = action, "allow"
        reasons.append("observe")
    review: ReviewReason | None = "band" if action == "review" else None
    if action == "allow" and audit_sampled(event_id, settings.seed, settings.audit_sample_rate):
        review = "audit"
        reasons.append("audit")
    return Decision(action, tuple(reasons), would_action, review)


def hash_match_decision(profile: Profile, banks: Sequence[str]) -> Decision:
    """The decision for an event whose images matched these banks: ``block``, a reason
    ``hash_match:<bank>`` per bank (observe mode: ``allow``, would be ``block``)."""
    reasons = [f"hash_match:{bank}" for bank in sorted(set(banks))]
    if profile.settings.mode == "observe":
        return Decision("allow", (*reasons, "observe"), "block", None)
    return Decision("block", tuple(reasons), None, None)


def enforce_action(
    settings: ProfileSettings, unsafe_score: float, category_scores: Mapping[str, float]
) -> tuple[Action, list[str]]:
    """What enforce mode does, and every rule that fired."""
    threshold = settings.unsafe_threshold
    over = unsafe_score >= threshold
    thresholds = settings.category_thresholds
    blocking = sorted(
        (
            key
            for key, score in category_scores.items()
            if key in thresholds and score >= thresholds[key]
        ),
        key=category_number,
    )
    if blocking:
        reasons = [f"{key}>={format_threshold(thresholds[key])}" for key in blocking]
        if over:
            reasons.append(f"unsafe_score>={format_threshold(threshold)}")
        return "block", reasons
    band = settings.review_band
    if band is not None and band[0] <= unsafe_score < band[1]:
        return "review", ["review_band"]
    if over:
        return "block", [f"unsafe_score>={format_threshold(threshold)}"]
    return "allow", [f"unsafe_score<{format_threshold(threshold)}"]


@lru_cache(maxsize=1024)
def format_threshold(value: float) -> str:
    """0.5 → '0.50', 0.425 → '0.425': two decimals unless that would misstate it (cached:
    a profile's few thresholds are formatted for every event's reasons)."""
    text = f"{value:.2f}"
    return text if float(text) == value else repr(value)


def with_decision(verdict: VerdictEvent, decision: Decision, profile: Profile) -> VerdictEvent:
    """The verdict with the decision's fields and the profile that judged it."""
    return verdict.model_copy(
        update={
            "action": decision.action,
            "reasons": list(decision.reasons),
            "would_action": decision.would_action,
            "policy": profile.ref,
        }
    )
