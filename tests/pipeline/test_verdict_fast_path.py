"""The verdict is built without re-validation (``model_construct``): its JSON must be the
bytes the validated model gives, for every kind of verdict the worker publishes."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from doubles import scored

from schemas import EventLimits
from schemas.conversation import ImageContent
from schemas.verdict import ModelInfo, SourcePosition, VerdictEvent
from worker.engine.types import ClassificationResult
from worker.images.types import PreparedImage
from worker.lab import conversation, encode_event
from worker.policy import load_policy_file
from worker.stages import build_verdict, decide_event, decode_event, fetch_images
from worker.work import ClassifiedEvent, DecodedEvent, FetchedEvent

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
TENANTS = (None, "kids", "adult-forum", "someone-else")
KEYS = ("S1", "S2", "S4", "S10", "S14")


def prepared(item: ImageContent) -> PreparedImage:
    uri = item.s3_uri
    return PreparedImage(hashlib.sha256(uri.encode()).hexdigest(), torch.zeros(1, 3, 2, 2), 1, 1)


def result(rng: random.Random) -> ClassificationResult:
    score = rng.choice([0.0, 1.0, 0.5, rng.random(), rng.random() / 100, 1 - rng.random() / 100])
    score = min(max(score, 1e-9), 1 - 1e-9) if 0.0 < score < 1.0 else score
    keys = tuple(sorted(rng.sample(KEYS, rng.randint(0, 3)), key=lambda k: int(k[1:])))
    base = scored(min(max(score, 1e-6), 1 - 1e-6), keys if score >= 0.5 else ())
    shares = [rng.random() for _ in keys]
    total = sum(shares) or 1.0
    return ClassificationResult(
        unsafe_score=score,
        unsafe=score >= 0.5,
        categories=base.categories,
        safe_logit=base.safe_logit,
        unsafe_logit=base.unsafe_logit,
        raw_output=base.raw_output,
        category_scores=tuple((k, score * s / total) for k, s in zip(keys, shares, strict=True)),
    )


@pytest.mark.parametrize("seed", range(3))
def test_constructed_verdict_json_equals_the_validated_models(seed: int) -> None:
    rng = random.Random(seed)
    policy = load_policy_file(EXAMPLE)
    model = ModelInfo(id="meta-llama/Llama-Guard-3-11B-Vision", revision="abc123")
    checked = 0
    for index in range(200):
        images = [f"s3://bucket/{index}-{n}.png" for n in range(rng.randint(0, 3))]
        document = conversation(
            f"e-{seed}-{index}",
            rng.choice(["hi", 'ünïcødé ✓ "quoted" \\ back', "x" * rng.randint(1, 400)]),
            images=images,
            role=rng.choice(["user", "assistant"]),
            tenant=rng.choice(TENANTS),
        )
        decoded = decode_event(
            encode_event(document), limits=EventLimits(), text_model=False, policy=policy
        )
        if not isinstance(decoded, DecodedEvent):
            continue  # a tenant the example refuses: a dead letter, not a verdict
        fetched = fetch_images(decoded, prepared)
        assert isinstance(fetched, FetchedEvent)
        results = tuple(result(rng) for _ in fetched.requests)
        decided = decide_event(ClassifiedEvent(fetched, results))
        verdict = build_verdict(
            decided,
            source=SourcePosition(topic="chat.events", partition=rng.randint(0, 5), offset=index),
            model=model,
            worker_id="w-1",
            latency_ms=rng.choice([0.0, rng.random() * 1000, 12.0]),
            processed_at=datetime(2026, 12, 2, 1, 2, 3, rng.randint(0, 999_999), tzinfo=UTC),
        )
        fast = verdict.model_dump_json()
        validated = VerdictEvent.model_validate(verdict.model_dump())
        assert fast == validated.model_dump_json()
        assert VerdictEvent.model_validate_json(fast) == validated
        checked += 1
    assert checked >= 100
