"""Builders and a Jinja renderer that mirrors transformers' apply_chat_template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from builders import assistant, event, image, text, user
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["assistant", "event", "image", "render_template", "text", "user"]

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
