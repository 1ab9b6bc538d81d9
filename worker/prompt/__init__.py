"""Llama Guard prompt rendering: pure functions, no model, no I/O."""

from worker.prompt.build import build_prompts
from worker.prompt.exceptions import ConversationNotSupported, PromptError
from worker.prompt.listing import render_prompt_listing
from worker.prompt.types import Prompt, PromptFormat, PromptSegment

__all__ = [
    "ConversationNotSupported",
    "Prompt",
    "PromptError",
    "PromptFormat",
    "PromptSegment",
    "build_prompts",
    "render_prompt_listing",
]
