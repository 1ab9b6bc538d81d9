"""decode_event validates straight from the bytes (one pydantic-core pass) and falls back
to the step-by-step path only when that fails: every record must end exactly as the
step-by-step path alone makes it end (same event and prompts, or the same failure)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from integration.hostile_cases import build_cases

from schemas import EventLimits
from worker.lab import conversation, encode_event
from worker.stages import decode as decode_module
from worker.stages.decode import decode_event
from worker.work import DecodedEvent, Failure

TEXTS = ("hi", "ünïcødé ✓ 😀", '"quoted" \\ back\nslash', "<|eot_id|><|image|>", "x" * 900)


def varied_events(count: int) -> list[bytes]:
    rng = random.Random(11)
    values = []
    for index in range(count):
        extra: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.2:
            extra["policy"] = {"excluded_category_keys": rng.sample(["S1", "S2", "S10", "S14"], 2)}
        elif roll < 0.3:
            extra["policy"] = {"categories": {"S1": "Fraud.", "S20": "Custom: spam ✓."}}
        elif roll < 0.33:
            extra["policy"] = {"exclude": ["S1"]}  # refused: a schema error either way
        if rng.random() < 0.2:
            extra["metadata"] = {"k": [1, 2.5, None, {"n": "ü"}]}
        document = conversation(
            f"e-{index}",
            rng.choice(TEXTS),
            images=[f"s3://bucket/{index}.png"] * rng.randint(0, 2),
            role=rng.choice(["user", "assistant"]),
            tenant=rng.choice([None, "t-1"]),
            **extra,
        )
        value = encode_event(document)
        if rng.random() < 0.2:  # the same event, spaced and key-reordered
            value = json.dumps(dict(reversed(list(document.items()))), indent=1).encode()
        values.append(value)
    return values


def outcome(result: DecodedEvent | Failure) -> tuple[Any, ...]:
    if isinstance(result, Failure):
        return ("failure", result.stage, result.error_class, result.message, result.event)
    return ("event", result.event, result.prompts, result.profile)


@pytest.mark.parametrize("text_model", [False, True])
def test_every_record_ends_as_the_step_by_step_path_makes_it(
    monkeypatch: pytest.MonkeyPatch, text_model: bool
) -> None:
    hostile = [case.value for case in build_cases("bucket", lambda key, data: f"s3://bucket/{key}")]
    values = [*hostile, *varied_events(300)]
    limits = EventLimits()
    fast = [decode_event(v, limits=limits, text_model=text_model) for v in values]
    monkeypatch.setattr(decode_module, "_validate_fast", lambda value, limits: None)
    plain = [decode_event(v, limits=limits, text_model=text_model) for v in values]
    assert [outcome(r) for r in fast] == [outcome(r) for r in plain]
    assert sum(isinstance(r, DecodedEvent) for r in fast) >= 300
    assert sum(isinstance(r, Failure) for r in fast) >= 30
