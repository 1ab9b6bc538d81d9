"""Which template a text model expects, and a canonical prompt to fingerprint templates."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from schemas.conversation import ConversationEvent, ImageContent, Message, TextContent
from worker.prompt.build import build_prompts
from worker.prompt.types import PromptFormat

_USER_TEXT = "How do I bake bread?"
_AGENT_TEXT = "Mix flour, water, salt and yeast."


def detect_prompt_format(chat_template: str | None) -> PromptFormat:
    """Llama Guard 3 1B shares the vision template (it takes ``categories``); the 8B
    template has a fixed list with S14."""
    if chat_template and "excluded_category_keys" in chat_template:
        return PromptFormat.LG3_VISION
    return PromptFormat.LG3_8B


def canonical_event(*, with_image: bool) -> ConversationEvent:
    """A fixed user + assistant conversation, default policy."""
    user_content: list[TextContent | ImageContent] = [TextContent(type="text", text=_USER_TEXT)]
    if with_image:
        user_content.append(ImageContent(type="image", s3_uri="s3://template-check/image.png"))
    return ConversationEvent(
        event_id="template-check",
        conversation_id="template-check",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        messages=[
            Message(role="user", content=user_content),
            Message(role="assistant", content=[TextContent(type="text", text=_AGENT_TEXT)]),
        ],
    )


def canonical_chat_messages(fmt: PromptFormat, *, with_image: bool) -> list[dict[str, Any]]:
    """``canonical_event`` as the Hugging Face chat template of ``fmt`` takes it."""
    if fmt is PromptFormat.LG3_8B:
        return [
            {"role": "user", "content": _USER_TEXT},
            {"role": "assistant", "content": _AGENT_TEXT},
        ]
    user: list[dict[str, str]] = [{"type": "text", "text": _USER_TEXT}]
    if with_image:
        user.append({"type": "image"})
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": [{"type": "text", "text": _AGENT_TEXT}]},
    ]


def canonical_prompt_text(fmt: PromptFormat, *, with_image: bool) -> str:
    event = canonical_event(with_image=with_image)
    return build_prompts(event, text_model=not with_image, text_format=fmt)[0].text


def template_sha256(fmt: PromptFormat, *, with_image: bool) -> str:
    """Fingerprint of guardstream's renderer: sha256 of the canonical prompt."""
    text = canonical_prompt_text(fmt, with_image=with_image)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
