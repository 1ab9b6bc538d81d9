"""The Quix Streams peer's per-event work (``bench overhead --peer quix``), in one place.

Imported by ``quix_app.py`` in the peer's own environment (it needs only ``schemas`` and
pydantic) and by ``bench steps``, which times it in a plain loop beside guardstream's
stage functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from schemas.conversation import ConversationEvent, EventLimits
from schemas.verdict import ModelInfo, SourcePosition, VerdictEvent


def peer_moderate(input_topic: str) -> Callable[[bytes], bytes]:
    """value → verdict JSON: validate the v1 ConversationEvent with pydantic (the same
    contract and limits the worker enforces), build a VerdictEvent (a fixed safe answer,
    like the instant classifier) and dump it."""
    limits = {"limits": EventLimits()}
    model = ModelInfo(id="instant", revision="bench")
    source = SourcePosition(topic=input_topic, partition=0, offset=0)

    def moderate(value: bytes) -> bytes:
        event = ConversationEvent.model_validate_json(value, context=limits)
        verdict = VerdictEvent(
            event_id=event.event_id,
            conversation_id=event.conversation_id,
            tenant_id=event.tenant_id,
            verdict="safe",
            categories=[],
            unsafe_score=0.0,
            classified_role=event.messages[-1].role,
            images=[],
            model=model,
            policy_hash="0" * 64,
            source=source,
            worker_id="quix",
            latency_ms=0.0,
            processed_at=datetime.now(UTC),
        )
        return verdict.model_dump_json().encode()

    return moderate
