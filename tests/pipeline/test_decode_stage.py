"""decode_event: every record becomes a DecodedEvent or a Failure naming its stage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import EventLimits
from schemas.dead_letter import ErrorStage
from worker.lab import conversation
from worker.stages.decode import decode_event
from worker.work import DecodedEvent, Failure


def event(**overrides: Any) -> dict[str, Any]:
    return conversation("e-1", "secret words", conversation_id="c-1", **overrides)


def decode(value: bytes | None, limits: EventLimits | None = None) -> DecodedEvent | Failure:
    return decode_event(value, limits=limits or EventLimits(), text_model=False)


@pytest.mark.parametrize(
    ("value", "stage", "error_class"),
    [
        (None, ErrorStage.DECODE, "EmptyRecord"),
        (b"\xff\xfe", ErrorStage.DECODE, "InvalidUtf8"),
        (b"not json", ErrorStage.DECODE, "InvalidJson"),
        (b"", ErrorStage.DECODE, "InvalidJson"),
        (b"[" * 10_000 + b"]" * 10_000, ErrorStage.DECODE, "InvalidJson"),
        (b"[" * 100 + b"]" * 100, ErrorStage.DECODE, "JsonTooDeep"),
        (b'"a string"', ErrorStage.VALIDATE, "NotAnObject"),
        (b"[1, 2]", ErrorStage.VALIDATE, "NotAnObject"),
        (b"{}", ErrorStage.VALIDATE, "SchemaError"),
    ],
)
def test_undecodable_and_invalid_records_fail_with_their_stage(
    value: bytes | None, stage: ErrorStage, error_class: str
) -> None:
    result = decode(value)
    assert isinstance(result, Failure)
    assert (result.stage, result.error_class) == (stage, error_class)


def test_schema_error_message_names_fields_but_not_content() -> None:
    bad = event(messages=[{"role": "robot", "content": [{"type": "text", "text": "secret words"}]}])
    result = decode(json.dumps(bad).encode())
    assert isinstance(result, Failure)
    assert "messages.0.role" in result.message
    assert "secret words" not in result.message


def test_limits_are_applied() -> None:
    result = decode(json.dumps(event()).encode(), EventLimits(max_text_chars=3))
    assert isinstance(result, Failure)
    assert result.stage is ErrorStage.VALIDATE


def test_valid_event_gets_its_prompts() -> None:
    images = [{"type": "image", "s3_uri": f"s3://b/{i}.png"} for i in range(3)]
    value = json.dumps(
        event(messages=[{"role": "user", "content": [*images, {"type": "text", "text": "hi"}]}])
    ).encode()
    result = decode(value)
    assert isinstance(result, DecodedEvent)
    assert [p.image.s3_uri for p in result.prompts if p.image] == [
        f"s3://b/{i}.png" for i in range(3)
    ]


def test_utf8_with_rtl_and_zero_width_text_is_accepted() -> None:
    text = "שלום\u200b\u202eabc"
    value = json.dumps(
        event(messages=[{"role": "user", "content": [{"type": "text", "text": text}]}]),
        ensure_ascii=False,
    ).encode()
    result = decode(value)
    assert isinstance(result, DecodedEvent)
    assert text.strip() in result.prompts[0].text


@pytest.mark.parametrize(("levels", "too_deep"), [(61, False), (62, False), (63, True)])
def test_depth_limit_at_the_boundary_inside_an_object(levels: int, too_deep: bool) -> None:
    # {"x": [[...[1]...]]}: the object is depth 1, each list one more, the 1 one more:
    # 63 lists put the 1 at depth 65 (64 containers, the count that starts the walk).
    value = b'{"x": ' + b"[" * levels + b"1" + b"]" * levels + b"}"
    result = decode(value)
    assert isinstance(result, Failure)
    assert result.error_class == ("JsonTooDeep" if too_deep else "SchemaError")


def test_brackets_inside_strings_do_not_make_a_shallow_event_too_deep() -> None:
    # The quick bracket count sees 200 brackets; the walk finds the real depth.
    text = {"type": "text", "text": "[" * 100 + "{" * 100}
    value = json.dumps(event(messages=[{"role": "user", "content": [text]}])).encode()
    assert isinstance(decode(value), DecodedEvent)
