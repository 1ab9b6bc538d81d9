"""The publish stage writes a verdict's JSON from its fields without building the
``VerdictEvent`` (``verdict_json``): every verdict must be the same bytes as the validated
model's ``model_dump_json()``, and parse back to the same model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import torch

from schemas import EventLimits
from schemas.hashbank import HashBankEntry
from schemas.verdict import ModelInfo, SourcePosition, VerdictEvent
from worker.engine.types import ClassificationResult
from worker.hashbank.bank import BankMatch
from worker.hashbank.hashing import ImageHashes
from worker.images.types import PreparedImage
from worker.lab import conversation, encode_event
from worker.policy import parse_policy
from worker.stages.classify import classify_batch
from worker.stages.decide import decide_event
from worker.stages.decode import decode_event
from worker.stages.fetch import fetch_images
from worker.stages.publish import build_verdict, verdict_fields, verdict_json
from worker.work import ClassifiedEvent, DecodedEvent

POLICY = parse_policy(
    b"""
[defaults]
unsafe_threshold = 0.5
[tenants.kids]
unsafe_threshold = 0.3
category_thresholds = { S1 = 0.1, S4 = 0.05, S10 = 0.1 }
review_band = [0.15, 0.3]
audit_sample_rate = 0.5
[tenants.quiet]
mode = "observe"
""",
    source="test.toml",
)
TEXTS = ("hi", "ünïcødé ✓ 😀 \u2028", '"quoted" \\ back\nslash', "<|eot_id|>", "x" * 400)
SCORES = (0.0, 1.0, 1e-7, 0.1 + 0.2, 0.5, 0.4999999999999999, 1 / 3, 2**-30)


def loader(rng: random.Random) -> Any:
    def load(image: Any) -> PreparedImage:
        hashes = None
        if rng.random() < 0.5:
            hashes = ImageHashes(
                pdq=f"{rng.getrandbits(256):064x}",
                pdq_quality=90,
                md5=f"{rng.getrandbits(128):032x}",
            )
        return PreparedImage(
            sha256=f"{rng.getrandbits(256):064x}",
            pixel_values=torch.zeros(1, 3, 2, 2),
            aspect_ratio_id=1,
            num_tiles=1,
            hashes=hashes,
        )

    return load


def result(rng: random.Random, keys: tuple[str, ...]) -> ClassificationResult:
    score = rng.choice(SCORES) if rng.random() < 0.3 else rng.random()
    unsafe = score >= 0.5
    categories = (
        tuple(sorted(rng.sample(keys, min(len(keys), rng.randint(0, 2))))) if unsafe else ()
    )
    shares = [rng.random() for _ in keys]
    total = sum(shares) or 1.0
    scored = tuple((key, score * share / total) for key, share in zip(keys, shares, strict=True))
    return ClassificationResult(
        unsafe_score=score,
        unsafe=unsafe,
        categories=categories,
        safe_logit=0.0,
        unsafe_logit=0.0,
        raw_output=None,
        category_scores=scored if rng.random() < 0.8 else (),
    )


class RandomClassifier:
    """A model whose every answer is drawn from ``rng`` (edge-case scores included)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def classify(self, requests: Any) -> list[ClassificationResult]:
        return [result(self.rng, request.prompt.category_keys) for request in requests]


def bank_matcher(rng: random.Random) -> Any:
    entry = HashBankEntry(
        signal="pdq",
        hash="f" * 64,
        bank="csam-ncmec",
        label="case ✓ 1",
        categories=["S4", "S1"],
        added_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return lambda _hashes: BankMatch(entry, rng.randint(0, 31)) if rng.random() < 0.3 else None


def decided_events(count: int) -> list[Any]:
    """Events through the real decode → fetch (with banks) → classify → decide stages."""
    rng = random.Random(7)
    load, match, model = loader(rng), bank_matcher(rng), RandomClassifier(rng)
    out = []
    for index in range(count):
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["policy"] = {"excluded_category_keys": rng.sample(["S1", "S2", "S10", "S14"], 2)}
        document = conversation(
            f"e-{index}-{rng.choice(TEXTS)[:3]}",
            rng.choice(TEXTS),
            images=[f"s3://bucket/{index}-{i}.png" for i in range(rng.choice((0, 0, 1, 3)))],
            role=rng.choice(["user", "assistant"]),
            tenant=rng.choice([None, "kids", "quiet", "other"]),
            conversation_id=f"c-{rng.choice(TEXTS)[:200]}",
            **extra,
        )
        decoded = decode_event(
            encode_event(document), limits=EventLimits(), text_model=False, policy=POLICY
        )
        assert isinstance(decoded, DecodedEvent), decoded
        fetched = fetch_images(decoded, load, match, rng.choice(("block", "classify_too")))
        (classified,) = classify_batch([fetched], model)  # type: ignore[arg-type]
        assert isinstance(classified, ClassifiedEvent), classified
        out.append(decide_event(classified))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_verdict_json_is_the_models_bytes(seed: int) -> None:
    rng = random.Random(seed)
    model = ModelInfo(id="meta-llama/Llama-Guard-3-11B-Vision", revision="r✓")
    now = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
    checked, kinds = 0, set()
    for decided in decided_events(300):
        source = SourcePosition(
            topic="in", partition=rng.randint(0, 5), offset=rng.randint(0, 10**12)
        )
        when = now + timedelta(microseconds=rng.randint(0, 10**9)) if rng.random() < 0.7 else now
        latency = rng.choice((0.0, -1.0, 1e-9, 12.5, rng.random() * 1e4))
        kwargs: dict[str, Any] = dict(
            model=model, worker_id="w-1", latency_ms=latency, processed_at=when
        )
        plain = build_verdict(decided, source=source, **kwargs)
        fast = verdict_json(verdict_fields(decided, source=source.model_dump(), **kwargs))
        assert fast == plain.model_dump_json().encode("utf-8")
        assert VerdictEvent.model_validate_json(fast) == plain
        checked += 1
        kinds.add((plain.action, bool(plain.images), plain.would_action, bool(plain.reasons)))
        kinds.update(f"hash:{i.hash_match.bank}" for i in plain.images if i.hash_match)
    assert checked == 300
    # The draw reaches every action, observe mode, images and bank matches.
    assert {k[0] for k in kinds if isinstance(k, tuple)} == {"allow", "review", "block"}
    assert "hash:csam-ncmec" in kinds and any(k[2] for k in kinds if isinstance(k, tuple))
