"""Fallback verdicts (``on_error`` = ``allow`` | ``block``): a dead-lettered event of
such a tenant also gets a verdict on the output topic, so consumers waiting for one
are never stuck. The dead letter is still written (pure functions, no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pydantic_core

from schemas.conversation import ConversationEvent
from schemas.dead_letter import ErrorStage
from schemas.verdict import Action, ModelInfo, SourcePosition, VerdictError, VerdictEvent
from worker.policy.profiles import PolicySet, Profile

_MAX_EVENT_ID = 128  # as ConversationEvent
_MAX_CONVERSATION_ID = 256
_MAX_TENANT_ID = 128


@dataclass(frozen=True)
class EventIdentity:
    """What a fallback verdict needs to name its event."""

    event_id: str
    conversation_id: str
    tenant_id: str | None

    @classmethod
    def of(cls, event: ConversationEvent) -> EventIdentity:
        return cls(event.event_id, event.conversation_id, event.tenant_id)


def peek_identity(value: bytes | None) -> EventIdentity | None:
    """The ids of a record that failed before (or at) validation, when it is a JSON
    object with a usable ``event_id`` and ``conversation_id``; else None (no fallback
    verdict can name the event: only the dead letter is written)."""
    if not value:
        return None
    try:
        document = pydantic_core.from_json(value)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    event_id = document.get("event_id")
    conversation_id = document.get("conversation_id")
    tenant_id = document.get("tenant_id")
    if not (_id(event_id, _MAX_EVENT_ID) and _id(conversation_id, _MAX_CONVERSATION_ID)):
        return None
    assert isinstance(event_id, str) and isinstance(conversation_id, str)
    return EventIdentity(
        event_id,
        conversation_id,
        tenant_id if isinstance(tenant_id, str) and _id(tenant_id, _MAX_TENANT_ID) else None,
    )


def _id(value: object, max_chars: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= max_chars


@dataclass(frozen=True)
class Fallback:
    """The decision fields of a fallback verdict."""

    action: Action
    would_action: Action | None  # observe mode: the action is allow, this says on_error's
    reasons: tuple[str, ...]
    profile: Profile


def fallback_for(profile: Profile) -> Fallback | None:
    """None for ``on_error = dead_letter`` (only the dead letter, as without a policy)."""
    on_error = profile.settings.on_error
    if on_error == "dead_letter":
        return None
    if profile.settings.mode == "observe":
        return Fallback("allow", on_error, ("error", "observe"), profile)
    return Fallback(on_error, None, ("error",), profile)


def fallback_verdict(
    policy: PolicySet,
    identity: EventIdentity,
    *,
    stage: ErrorStage,
    error_class: str,
    source: SourcePosition,
    model: ModelInfo,
    worker_id: str,
    latency_ms: float,
    processed_at: datetime | None = None,
) -> VerdictEvent | None:
    """The fallback verdict of a dead-lettered event, or None when its profile (the
    tenant's, else the defaults) dead-letters only."""
    profile = policy.fallback_profile(identity.tenant_id)
    fallback = fallback_for(profile)
    if fallback is None:
        return None
    return VerdictEvent(
        event_id=identity.event_id,
        conversation_id=identity.conversation_id,
        tenant_id=identity.tenant_id,
        verdict="error",
        categories=[],
        unsafe_score=0.0,
        classified_role=None,
        images=[],
        model=model,
        policy_hash=None,
        source=source,
        worker_id=worker_id,
        latency_ms=max(latency_ms, 0.0),
        processed_at=processed_at or datetime.now(UTC),
        action=fallback.action,
        reasons=list(fallback.reasons),
        would_action=fallback.would_action,
        policy=profile.ref,
        error=VerdictError(stage=stage, error_class=error_class),
    )
