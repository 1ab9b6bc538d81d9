"""on_error: fallback verdicts for dead-lettered events of tenants that want one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from policy_helpers import policy

from schemas.dead_letter import ErrorStage
from schemas.verdict import ModelInfo, SourcePosition, VerdictEvent
from worker.policy import EventIdentity, builtin_policy, fallback_verdict, peek_identity

FILE = """
[tenants.blocker]
on_error = "block"
[tenants.allower]
on_error = "allow"
[tenants.watcher]
on_error = "block"
mode = "observe"
"""
SOURCE = SourcePosition(topic="conversations", partition=2, offset=40)
MODEL = ModelInfo(id="tiny", revision="r1")
AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def fallback(tenant_id: str | None, stage: ErrorStage = ErrorStage.FETCH) -> VerdictEvent | None:
    return fallback_verdict(
        policy(FILE),
        EventIdentity("evt-1", "conv-1", tenant_id),
        stage=stage,
        error_class="ObjectNotFound",
        source=SOURCE,
        model=MODEL,
        worker_id="w1",
        latency_ms=3.0,
        processed_at=AT,
    )


@pytest.mark.parametrize(("tenant", "action"), [("blocker", "block"), ("allower", "allow")])
def test_fallback_verdict_carries_the_configured_action_and_the_error(
    tenant: str, action: str
) -> None:
    verdict = fallback(tenant)
    assert verdict is not None
    assert (verdict.verdict, verdict.action, verdict.reasons) == ("error", action, ["error"])
    assert verdict.error is not None
    assert (verdict.error.stage, verdict.error.error_class) == (ErrorStage.FETCH, "ObjectNotFound")
    assert verdict.policy is not None and verdict.policy.tenant_profile == f"tenants.{tenant}"
    assert (verdict.event_id, verdict.conversation_id, verdict.tenant_id) == (
        "evt-1",
        "conv-1",
        tenant,
    )
    assert verdict.categories == [] and verdict.images == [] and verdict.category_scores == {}
    assert verdict.classified_role is None and verdict.policy_hash is None
    wire = json.loads(verdict.model_dump_json())
    assert wire["error"] == {"stage": "fetch", "class": "ObjectNotFound"}
    assert VerdictEvent.model_validate_json(verdict.model_dump_json()) == verdict


def test_dead_letter_only_tenants_get_no_fallback() -> None:
    assert fallback("someone-else") is None  # [defaults]: on_error = dead_letter
    assert fallback(None) is None
    identity = EventIdentity("e", "c", None)
    args = {
        "stage": ErrorStage.VALIDATE,
        "error_class": "SchemaError",
        "source": SOURCE,
        "model": MODEL,
        "worker_id": "w",
        "latency_ms": 0.0,
    }
    assert fallback_verdict(builtin_policy(), identity, **args) is None  # type: ignore[arg-type]


def test_observe_mode_fallback_allows_and_says_what_on_error_would_do() -> None:
    verdict = fallback("watcher", ErrorStage.CLASSIFY)
    assert verdict is not None
    assert (verdict.action, verdict.would_action) == ("allow", "block")
    assert verdict.reasons == ["error", "observe"]


def test_unknown_tenants_fall_back_to_the_defaults_even_when_refused() -> None:
    loaded = policy('[defaults]\nrequire_known_tenant = true\non_error = "block"\n')
    verdict = fallback_verdict(
        loaded,
        EventIdentity("e", "c", "nobody"),
        stage=ErrorStage.VALIDATE,
        error_class="UnknownTenant",
        source=SOURCE,
        model=MODEL,
        worker_id="w",
        latency_ms=0.0,
    )
    assert verdict is not None and verdict.action == "block"
    assert verdict.policy is not None and verdict.policy.tenant_profile == "defaults"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            b'{"event_id": "e", "conversation_id": "c", "tenant_id": "t", "messages": 3}',
            ("e", "c", "t"),
        ),
        (b'{"event_id": "e", "conversation_id": "c", "tenant_id": 7}', ("e", "c", None)),
        (b'{"event_id": "e", "conversation_id": "c"}', ("e", "c", None)),
        (b'{"event_id": "", "conversation_id": "c"}', None),
        (b'{"event_id": "e"}', None),
        (b'{"event_id": 1, "conversation_id": "c"}', None),
        (b"[1, 2]", None),
        (b"not json", None),
        (b"\xff\xfe", None),
        (b"", None),
        (None, None),
    ],
)
def test_peek_identity(value: bytes | None, expected: tuple[str, str, str | None] | None) -> None:
    found = peek_identity(value)
    assert (
        None if found is None else (found.event_id, found.conversation_id, found.tenant_id)
    ) == expected
