"""ReviewRequest records: the verdict plus the consumed value, byte for byte."""

from __future__ import annotations

import json

from schemas.review import ReviewRequest
from schemas.verdict import VerdictEvent
from worker.policy import review_request_value


def verdict() -> VerdictEvent:
    return VerdictEvent.model_validate(
        {
            "event_id": "evt-1",
            "conversation_id": "conv-1",
            "tenant_id": "kids",
            "verdict": "safe",
            "categories": [],
            "unsafe_score": 0.2,
            "classified_role": "user",
            "images": [],
            "model": {"id": "m", "revision": "r"},
            "policy_hash": "f" * 64,
            "source": {"topic": "conversations", "partition": 0, "offset": 7},
            "worker_id": "w1",
            "latency_ms": 1.0,
            "processed_at": "2026-11-24T09:00:01Z",
            "category_scores": {"S1": 0.15, "S10": 0.05},
            "action": "review",
            "reasons": ["review_band"],
            "policy": {"tenant_profile": "tenants.kids", "version": "a" * 64},
        }
    )


ORIGINAL = (
    '{ "event_id":"evt-1", "conversation_id":"conv-1", "future_field": [1.0, 2e3],\n'
    '  "messages":[{"role":"user","content":[{"type":"text","text":"héllo \\u00e9"}]}] }'
).encode()


def test_the_original_value_is_kept_exactly() -> None:
    value = review_request_value(verdict(), ORIGINAL, "band")
    request = ReviewRequest.model_validate_json(value)
    assert request.original_value is not None
    assert request.original_value.encode("utf-8") == ORIGINAL  # whitespace, unknown fields, escapes
    assert request.reason == "band" and request.omitted is None
    assert request.verdict == verdict()
    assert json.loads(value)["schema_version"] == 1


def test_too_large_leaves_the_value_out_and_says_so() -> None:
    big = b'{"event_id": "evt-1", "pad": "' + b"x" * 5000 + b'"}'
    value = review_request_value(verdict(), big, "audit", max_bytes=4000)
    assert len(value) <= 4000
    request = ReviewRequest.model_validate_json(value)
    assert request.original_value is None and request.omitted == f"value={len(big)}"
    assert request.verdict.source.offset == 7  # where to read it instead
    fits = review_request_value(verdict(), big, "audit", max_bytes=100_000)
    assert ReviewRequest.model_validate_json(fits).original_value is not None
