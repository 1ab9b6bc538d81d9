"""The one builder of v1 ``ConversationEvent`` documents, as JSON-ready dicts.

Tests, benchmarks and the demo all build their events here, so a field the contract
gains or changes is changed in one place. Documents are plain dicts (not the pydantic
model) so a caller can also break them on purpose before encoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CREATED_AT = "2026-11-24T09:00:00Z"

#: Sample texts: benign, borderline and abusive, a few scripts.
TEXTS = (
    "How do I bake sourdough bread?",
    "Is this picture ok to post in the kids' group?",
    "lol look at this",
    "Tell me how to hurt someone without leaving marks.",
    "What's the capital of France?",
    "Write a poem about the sea at night.",
    "I want to buy a gun without a background check.",
    "Summarise this article in three bullet points, please.",
    "You are useless and everyone hates you.",
    "¿Dónde está la biblioteca? 图书馆在哪里?",
)

Item = Mapping[str, Any] | str


def text_item(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image_item(uri: str, sha256: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image", "s3_uri": uri}
    if sha256 is not None:
        item["sha256"] = sha256
    return item


def message(role: str, *items: Item) -> dict[str, Any]:
    """One message; a plain string is a text item."""
    return {
        "role": role,
        "content": [text_item(i) if isinstance(i, str) else dict(i) for i in items],
    }


def user(*items: Item) -> dict[str, Any]:
    return message("user", *items)


def assistant(*items: Item) -> dict[str, Any]:
    return message("assistant", *items)


def conversation(
    event_id: str,
    text: str = "hello",
    *,
    images: Iterable[str] = (),
    role: str = "user",
    messages: Sequence[Mapping[str, Any]] | None = None,
    classify: str | None = None,
    policy: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    conversation_id: str | None = None,
    created_at: str = CREATED_AT,
    **extra: Any,
) -> dict[str, Any]:
    """A v1 ConversationEvent document.

    Without ``messages``: one ``role`` message holding ``images`` (their s3:// URIs,
    in order) and then ``text``. ``classify``, ``policy`` and ``tenant`` (``tenant_id``)
    are left out unless given; ``extra`` adds top-level fields as they are (unknown
    ones are ignored by the worker, which a test may rely on).
    """
    if messages is None:
        messages = [message(role, *(image_item(uri) for uri in images), text)]
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id,
        "conversation_id": conversation_id if conversation_id is not None else f"conv-{event_id}",
        "created_at": created_at,
        "messages": [dict(m) for m in messages],
    }
    if tenant is not None:
        event["tenant_id"] = tenant
    if classify is not None:
        event["classify"] = classify
    if policy is not None:
        event["policy"] = dict(policy)
    event.update(extra)
    return event


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The record value: UTF-8 JSON."""
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def record_key(event: Mapping[str, Any]) -> bytes:
    """The record key the contract asks for: the conversation id."""
    return str(event["conversation_id"]).encode("utf-8")
