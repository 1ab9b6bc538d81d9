"""The v1 contracts: what producers may send, what consumers of verdicts rely on."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import ConversationEvent, DeadLetterHeaders, ErrorStage, EventLimits, VerdictEvent
from schemas.export import CONTRACTS, JSON_DIR, render


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema_version": 1,
        "event_id": "evt-1",
        "conversation_id": "conv-1",
        "created_at": "2026-11-24T09:00:00Z",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        ],
    }
    base.update(overrides)
    return base


def test_json_schemas_are_current() -> None:
    assert "hash_bank_entry.v1.json" in CONTRACTS  # the bank topic is a contract too
    for filename, model in CONTRACTS.items():
        on_disk = (JSON_DIR / filename).read_text(encoding="utf-8")
        assert on_disk == render(model), f"{filename} drifted: run python -m schemas.export"


def test_minimal_event_parses_with_defaults() -> None:
    parsed = ConversationEvent.model_validate_json(json.dumps(event()))
    assert parsed.classify == "auto"
    assert parsed.policy is None
    assert parsed.created_at.utcoffset() is not None


def test_unknown_top_level_fields_are_ignored() -> None:
    parsed = ConversationEvent.model_validate(event(future_field={"x": 1}))
    assert not hasattr(parsed, "future_field")


def test_image_items_keep_order_and_lowercase_sha() -> None:
    sha = "AB" * 32
    parsed = ConversationEvent.model_validate(
        event(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "s3_uri": "s3://b/one.png", "sha256": sha},
                        {"type": "text", "text": "look"},
                        {"type": "image", "s3_uri": "s3://b/two.png"},
                    ],
                }
            ]
        )
    )
    assert [i.s3_uri for i in parsed.image_items()] == ["s3://b/one.png", "s3://b/two.png"]
    assert parsed.image_items()[0].sha256 == sha.lower()


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_id": ""},
        {"event_id": "x" * 129},
        {"schema_version": 2},
        {"created_at": "2026-11-24T09:00:00"},  # RFC 3339 needs an offset
        {"created_at": "yesterday"},
        {"messages": []},
        {"messages": [{"role": "system", "content": [{"type": "text", "text": "x"}]}]},
        {"messages": [{"role": "user", "content": []}]},
        {"messages": [{"role": "user", "content": "plain string"}]},
        {"messages": [{"role": "user", "content": [{"type": "audio", "url": "x"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "image", "s3_uri": "http://b/k"}]}]},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "s3_uri": "s3://b/k", "sha256": "zz"}],
                }
            ]
        },
        {"classify": "both"},
        {"policy": {"categories": {"X1": "bad key"}}},
        {"policy": {"excluded_category_keys": ["S1", "nope"]}},
        {"policy": {"unknown": True}},
    ],
)
def test_invalid_events_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConversationEvent.model_validate(event(**overrides))


def test_limits_come_from_validation_context() -> None:
    many = [
        {"role": role, "content": [{"type": "text", "text": "t"}]}
        for role in ["user", "assistant"] * 3
    ]
    ConversationEvent.model_validate(event(messages=many))
    with pytest.raises(ValidationError, match="too many messages"):
        ConversationEvent.model_validate(
            event(messages=many), context={"limits": EventLimits(max_messages=5)}
        )
    with pytest.raises(ValidationError, match="text of"):
        ConversationEvent.model_validate(
            event(messages=[{"role": "user", "content": [{"type": "text", "text": "x" * 11}]}]),
            context={"limits": EventLimits(max_text_chars=10)},
        )


def test_default_limits_refuse_oversized_text_and_too_many_images() -> None:
    with pytest.raises(ValidationError):
        ConversationEvent.model_validate(
            event(messages=[{"role": "user", "content": [{"type": "text", "text": "x" * 16_001}]}])
        )
    images = [{"type": "image", "s3_uri": f"s3://b/{i}.png"} for i in range(9)]
    with pytest.raises(ValidationError, match="too many images"):
        ConversationEvent.model_validate(event(messages=[{"role": "user", "content": images}]))


def test_verdict_event_round_trips() -> None:
    verdict = VerdictEvent.model_validate(
        {
            "event_id": "evt-1",
            "conversation_id": "conv-1",
            "verdict": "unsafe",
            "categories": ["S1", "S10"],
            "unsafe_score": 0.93,
            "classified_role": "user",
            "images": [
                {
                    "s3_uri": "s3://b/k.png",
                    "sha256": "0" * 64,
                    "verdict": "unsafe",
                    "categories": ["S1"],
                    "unsafe_score": 0.93,
                }
            ],
            "model": {"id": "meta-llama/Llama-Guard-3-11B-Vision", "revision": "abc"},
            "policy_hash": "f" * 64,
            "source": {"topic": "conversations", "partition": 0, "offset": 7},
            "worker_id": "w1",
            "latency_ms": 12.5,
            "processed_at": "2026-11-24T09:00:01Z",
        }
    )
    assert VerdictEvent.model_validate_json(verdict.model_dump_json()) == verdict
    with pytest.raises(ValidationError):
        VerdictEvent.model_validate({**verdict.model_dump(), "unsafe_score": 1.5})
    with pytest.raises(ValidationError):
        VerdictEvent.model_validate({**verdict.model_dump(), "categories": ["violence"]})


def test_dead_letter_headers_round_trip_through_kafka_headers() -> None:
    headers = DeadLetterHeaders.model_validate(
        {
            "guardstream.error.stage": "fetch",
            "guardstream.error.class": "ObjectNotFound",
            "guardstream.error.message": "s3://b/k: NoSuchKey",
            "guardstream.original.topic": "conversations",
            "guardstream.original.partition": 3,
            "guardstream.original.offset": 42,
            "guardstream.original.timestamp": 1_700_000_000_000,
            "guardstream.attempts": 1,
            "guardstream.worker": "w1",
        }
    )
    kafka_headers = headers.to_kafka_headers()
    assert ("guardstream.error.stage", b"fetch") in kafka_headers
    assert DeadLetterHeaders.from_kafka_headers([("trace", b"x"), *kafka_headers]) == headers
    assert headers.stage is ErrorStage.FETCH


def verdict_fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "evt-1",
        "conversation_id": "conv-1",
        "verdict": "safe",
        "categories": [],
        "unsafe_score": 0.1,
        "classified_role": "user",
        "images": [],
        "model": {"id": "m", "revision": "r"},
        "policy_hash": "f" * 64,
        "source": {"topic": "conversations", "partition": 0, "offset": 7},
        "worker_id": "w1",
        "latency_ms": 1.0,
        "processed_at": "2026-11-24T09:00:01Z",
    }
    base.update(overrides)
    return base


def test_verdicts_written_before_the_decision_fields_still_parse() -> None:
    old = VerdictEvent.model_validate(verdict_fields())
    assert (old.action, old.reasons, old.would_action, old.policy, old.error) == (
        None,
        [],
        None,
        None,
        None,
    )
    assert old.category_scores == {}
    schema = VerdictEvent.model_json_schema()
    assert "action" not in schema["required"] and "category_scores" not in schema["required"]


def test_decision_fields_round_trip_and_are_checked() -> None:
    full = VerdictEvent.model_validate(
        verdict_fields(
            verdict="unsafe",
            unsafe_score=0.4,
            category_scores={"S1": 0.3, "S10": 0.1},
            images=[
                {
                    "s3_uri": "s3://b/k.png",
                    "sha256": "0" * 64,
                    "verdict": "unsafe",
                    "categories": ["S1"],
                    "unsafe_score": 0.4,
                    "category_scores": {"S1": 0.3, "S10": 0.1},
                }
            ],
            action="allow",
            reasons=["unsafe_score>=0.30", "observe"],
            would_action="block",
            policy={"tenant_profile": "tenants.kids", "version": "a" * 64},
        )
    )
    assert VerdictEvent.model_validate_json(full.model_dump_json()) == full
    for bad in (
        {"action": "quarantine"},
        {"category_scores": {"S1": 1.5}},
        {"category_scores": {"violence": 0.5}},
        {"error": {"stage": "fetch", "class": "X"}},  # only in fallback verdicts
        {"classified_role": None},  # only in fallback verdicts
    ):
        with pytest.raises(ValidationError):
            VerdictEvent.model_validate(verdict_fields(**bad))


def test_fallback_verdicts() -> None:
    fallback = VerdictEvent.model_validate(
        verdict_fields(
            verdict="error",
            unsafe_score=0.0,
            classified_role=None,
            policy_hash=None,
            action="block",
            reasons=["error"],
            error={"stage": "validate", "class": "SchemaError"},
        )
    )
    assert fallback.error is not None and fallback.error.error_class == "SchemaError"
    assert json.loads(fallback.model_dump_json())["error"] == {
        "stage": "validate",
        "class": "SchemaError",
    }
    with pytest.raises(ValidationError):  # a fallback needs its error and action
        VerdictEvent.model_validate(verdict_fields(verdict="error", action="block"))
    with pytest.raises(ValidationError):
        VerdictEvent.model_validate(
            verdict_fields(verdict="error", error={"stage": "fetch", "class": "X"})
        )


def test_review_request_round_trips() -> None:
    from schemas import ReviewRequest

    verdict = VerdictEvent.model_validate(verdict_fields(action="review", reasons=["review_band"]))
    request = ReviewRequest(reason="band", verdict=verdict, original_value='{"event_id": "evt-1"}')
    assert ReviewRequest.model_validate_json(request.model_dump_json()) == request
    omitted = ReviewRequest(reason="audit", verdict=verdict, original_value=None, omitted="value=9")
    assert ReviewRequest.model_validate_json(omitted.model_dump_json()) == omitted
    for bad in (
        {"reason": "other", "original_value": "{}"},
        {"reason": "band", "original_value": None},  # neither value nor omitted
        {"reason": "band", "original_value": "{}", "omitted": "value=2"},  # both
        {"reason": "band", "original_value": "{}", "schema_version": 2},
    ):
        with pytest.raises(ValidationError):
            ReviewRequest.model_validate({"verdict": verdict.model_dump(), **bad})
    assert "review_request.v1.json" in CONTRACTS
