"""Stage ``decode`` (and ``validate``): record bytes → a validated event and its prompts.

Runs inline in the consumer thread (``RunTask``): cheap, and the first place a bad
record becomes a ``Failure`` instead of an exception.
"""

from __future__ import annotations

import time

import pydantic_core
from pydantic import ValidationError

from schemas.conversation import ConversationEvent, EventLimits
from schemas.dead_letter import ErrorStage
from worker.metrics import Metrics
from worker.policy import PolicyRefusal, PolicySet, PolicyStore, builtin_policy, resolve
from worker.prompt import ConversationNotSupported, PromptFormat, build_prompts
from worker.streaming.types import Message
from worker.work import DecodedEvent, Failure

# Deeper JSON than this is refused as undecodable rather than recursed into.
MAX_JSON_DEPTH = 64
# Without a policy file: one profile, today's categories.
BUILTIN_POLICY = builtin_policy()


def decode_event(
    value: bytes | None,
    *,
    limits: EventLimits,
    text_model: bool,
    text_format: PromptFormat = PromptFormat.LG3_8B,
    policy: PolicySet | None = None,
) -> DecodedEvent | Failure:
    """Bytes → a validated event, its tenant profile and its prompts (stages ``decode``
    and ``validate``). ``policy``: the tenant profiles (default: the built-in one, i.e.
    no policy file); the profile gives the category list the event's own policy narrows.
    """
    consumed_at = time.monotonic()
    if value is None:
        return Failure(ErrorStage.DECODE, "EmptyRecord", "record has no value (tombstone)")
    event = _validate_fast(value, limits)
    if event is None:
        parsed = _parse_and_validate(value, limits)
        if isinstance(parsed, Failure):
            return parsed
        event = parsed
    profile = resolve(event, policy or BUILTIN_POLICY)
    if isinstance(profile, PolicyRefusal):
        return Failure(profile.stage, profile.error_class, profile.message, event=event)
    try:
        prompts = build_prompts(
            event,
            text_model=text_model,
            text_format=text_format,
            base_categories=profile.prompt_categories,
        )
    except ConversationNotSupported as exc:
        return Failure.from_exception(ErrorStage.VALIDATE, exc, event=event)
    return DecodedEvent(event, tuple(prompts), consumed_at, profile)


def _validate_fast(value: bytes, limits: EventLimits) -> ConversationEvent | None:
    """The common case in one pass: pydantic-core parses and validates the bytes without
    building the intermediate Python document. None when that fails or the document may
    be too deep: ``_parse_and_validate`` then names the precise failure (the same event
    validates to the same model either way: tests/pipeline/test_decode_fast_path.py)."""
    if value.count(b"{") + value.count(b"[") >= MAX_JSON_DEPTH:
        return None
    try:
        return ConversationEvent.model_validate_json(value, context={"limits": limits})
    except ValidationError:
        return None


def _parse_and_validate(value: bytes, limits: EventLimits) -> ConversationEvent | Failure:
    """Bytes → event step by step, each way of failing with its own stage and class."""
    try:
        text = value.decode("utf-8")
        document = pydantic_core.from_json(text)
    except UnicodeDecodeError as exc:
        return Failure(
            ErrorStage.DECODE,
            "InvalidUtf8",
            f"value is not UTF-8: {exc.reason} at byte {exc.start}",
        )
    except ValueError as exc:
        return Failure(ErrorStage.DECODE, "InvalidJson", f"value is not JSON: {exc}")
    # A node's depth is at most the number of containers above it plus one, so
    # few brackets in the bytes (strings included) rule out a deep document.
    if value.count(b"{") + value.count(b"[") >= MAX_JSON_DEPTH and _depth_exceeds(
        document, MAX_JSON_DEPTH
    ):
        return Failure(
            ErrorStage.DECODE, "JsonTooDeep", f"JSON nests deeper than {MAX_JSON_DEPTH} levels"
        )
    if not isinstance(document, dict):
        return Failure(
            ErrorStage.VALIDATE,
            "NotAnObject",
            f"event must be a JSON object, got {type(document).__name__}",
        )
    try:
        event = ConversationEvent.model_validate(document, context={"limits": limits})
    except ValidationError as exc:
        return Failure(ErrorStage.VALIDATE, "SchemaError", describe_validation_error(exc))
    return event


def describe_validation_error(exc: ValidationError, max_errors: int = 5) -> str:
    """The field paths and reasons, never the offending values (they are user content)."""
    errors = exc.errors(include_input=False, include_url=False)
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or '(event)'}: {error['msg']}"
        for error in errors[:max_errors]
    ]
    more = f" (+{len(errors) - max_errors} more)" if len(errors) > max_errors else ""
    return f"{len(errors)} schema error(s): " + "; ".join(parts) + more


def _depth_exceeds(document: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


class Decode:
    """``decode_event`` as the worker's first step runs it: counts every consumed record;
    each event is judged by the profiles current when it is decoded."""

    def __init__(
        self,
        limits: EventLimits,
        policy: PolicyStore,
        metrics: Metrics,
        *,
        text_model: bool,
        text_format: PromptFormat = PromptFormat.LG3_8B,
    ) -> None:
        self._limits = limits
        self._policy = policy
        self._consumed = metrics.events_consumed
        self._text_model = text_model
        self._text_format = text_format

    def __call__(self, message: Message[bytes | None]) -> DecodedEvent | Failure:
        self._consumed.inc()
        return decode_event(
            message.value,
            limits=self._limits,
            text_model=self._text_model,
            text_format=self._text_format,
            policy=self._policy.current,
        )
