"""Builders of ConversationEvents for tests (importable from every test folder)."""

from __future__ import annotations

from typing import Any

from schemas.conversation import ConversationEvent


def event(messages: list[dict[str, Any]], **extra: Any) -> ConversationEvent:
    return ConversationEvent.model_validate(
        {
            "event_id": "e-1",
            "conversation_id": "c-1",
            "created_at": "2024-05-01T12:00:00Z",
            "messages": messages,
            **extra,
        }
    )


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def image(name: str) -> dict[str, str]:
    return {"type": "image", "s3_uri": f"s3://bucket/{name}.png"}


def user(*items: dict[str, str] | str) -> dict[str, Any]:
    return {"role": "user", "content": [text(i) if isinstance(i, str) else i for i in items]}


def assistant(*items: dict[str, str] | str) -> dict[str, Any]:
    return {"role": "assistant", "content": [text(i) if isinstance(i, str) else i for i in items]}
