"""Builders and a Jinja renderer that mirrors transformers' apply_chat_template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.conversation import ConversationEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_guard"
VISION_TEMPLATE = (FIXTURES / "llama_guard_3_vision_chat_template.jinja").read_text("utf-8")
TEXT_8B_TEMPLATE = (FIXTURES / "llama_guard_3_8b_chat_template.jinja").read_text("utf-8")


def render_template(template: str, messages: list[dict[str, Any]], **variables: Any) -> str:
    """Render like transformers does (same environment options and globals)."""

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, **variables)


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
