"""The pipeline's stage functions: plain functions over ``worker.work`` values.

Each turns its input into the next stage's value or a ``Failure`` naming the stage;
none raises for a bad event. ``worker.pipeline`` wires them into streaming steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pydantic_core
from pydantic import ValidationError

from schemas.conversation import ConversationEvent, EventLimits, ImageContent
from schemas.dead_letter import ErrorStage
from worker.engine.types import (
    ClassificationFailure,
    ClassificationRequest,
    ClassificationResult,
    Classifier,
)
from worker.images.exceptions import ImageError
from worker.images.types import PreparedImage
from worker.prompt import ConversationNotSupported, PromptFormat, build_prompts
from worker.work import ClassifiedEvent, DecodedEvent, Failure, PreparedEvent, Work

# Deeper JSON than this is refused as undecodable rather than recursed into.
MAX_JSON_DEPTH = 64


def decode_event(
    value: bytes | None,
    *,
    limits: EventLimits,
    text_model: bool,
    text_format: PromptFormat = PromptFormat.LG3_8B,
) -> DecodedEvent | Failure:
    """Bytes → a validated event and its prompts (stages ``decode`` and ``validate``)."""
    consumed_at = time.monotonic()
    if value is None:
        return Failure(ErrorStage.DECODE, "EmptyRecord", "record has no value (tombstone)")
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
        prompts = build_prompts(event, text_model=text_model, text_format=text_format)
    except ValidationError as exc:
        return Failure(ErrorStage.VALIDATE, "SchemaError", describe_validation_error(exc))
    except ConversationNotSupported as exc:
        return Failure.from_exception(ErrorStage.VALIDATE, exc)
    return DecodedEvent(event, tuple(prompts), consumed_at)


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


def prepare_event(
    decoded: DecodedEvent, prepare_image: Callable[[ImageContent], PreparedImage]
) -> PreparedEvent | Failure:
    """Fetch and tile the event's images (stage ``fetch``); runs on a fetch thread.

    ``prepare_image`` raises ``ImageError``; a permanent one (or an exhausted retry
    budget) fails the whole event, since its verdict would be incomplete.
    """
    prepared: dict[str, PreparedImage] = {}  # an image repeated in one event is fetched once
    requests = []
    for prompt in decoded.prompts:
        image = None
        if prompt.image is not None:
            uri = prompt.image.s3_uri
            if uri not in prepared:
                try:
                    prepared[uri] = prepare_image(prompt.image)
                except ImageError as exc:
                    return Failure.from_exception(
                        ErrorStage.FETCH, exc, exc.attempts, decoded.event
                    )
            image = prepared[uri]
        requests.append(ClassificationRequest(prompt, image))
    return PreparedEvent(decoded, tuple(requests))


def classify_batch(
    batch: Sequence[Work], vision: Classifier, text: Classifier | None = None
) -> list[Work]:
    """Classify every prompt of a micro-batch of events in one call per classifier
    (stage ``classify``); runs on the model thread.

    Text-only prompts go to ``text`` when a text model is configured. An event any
    of whose prompts failed is dead-lettered; the rest of the batch is unaffected.
    """
    routed: dict[int, list[tuple[int, int, ClassificationRequest]]] = {}
    for item_index, item in enumerate(batch):
        if isinstance(item, PreparedEvent):
            for request_index, request in enumerate(item.requests):
                classifier_id = 1 if (text is not None and request.image is None) else 0
                routed.setdefault(classifier_id, []).append((item_index, request_index, request))

    outcomes: dict[tuple[int, int], ClassificationResult | ClassificationFailure] = {}
    for classifier_id, entries in routed.items():
        classifier = text if classifier_id == 1 and text is not None else vision
        results = classifier.classify([request for _, _, request in entries])
        for (item_index, request_index, _), outcome in zip(entries, results, strict=True):
            outcomes[(item_index, request_index)] = outcome

    output: list[Work] = []
    for item_index, item in enumerate(batch):
        if not isinstance(item, PreparedEvent):
            output.append(item)
            continue
        item_outcomes = [outcomes[(item_index, i)] for i in range(len(item.requests))]
        failure = next((o for o in item_outcomes if isinstance(o, ClassificationFailure)), None)
        if failure is not None:
            output.append(
                Failure(
                    ErrorStage.CLASSIFY,
                    failure.error_class,
                    failure.message,
                    event=item.decoded.event,
                )
            )
        else:
            done = tuple(o for o in item_outcomes if isinstance(o, ClassificationResult))
            output.append(ClassifiedEvent(item, done))
    return output
