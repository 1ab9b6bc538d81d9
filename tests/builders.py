"""Builders of ConversationEvents for tests (importable from every test folder): the
validated model, built with ``worker.lab``'s one event builder."""

from __future__ import annotations

from typing import Any

from schemas.conversation import ConversationEvent
from worker.lab import assistant, conversation, image_item, user
from worker.lab import text_item as text

__all__ = ["assistant", "event", "image", "text", "user"]


def event(messages: list[dict[str, Any]], **extra: Any) -> ConversationEvent:
    return ConversationEvent.model_validate(
        conversation(
            "e-1",
            messages=messages,
            conversation_id="c-1",
            created_at="2024-05-01T12:00:00Z",
            **extra,
        )
    )


def image(name: str) -> dict[str, Any]:
    """An image item at ``s3://bucket/<name>.png``."""
    return image_item(f"s3://bucket/{name}.png")
