"""ConversationEvent -> the prompts the model sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.conversation import ConversationEvent
from worker.prompt.categories import (
    DEFAULT_CATEGORIES,
    LG3_8B_CATEGORIES,
    active_categories,
    category_keys,
)
from worker.prompt.categories import policy_hash as hash_categories
from worker.prompt.normalize import normalize
from worker.prompt.text import render_text_segments
from worker.prompt.types import Category, Prompt, PromptFormat
from worker.prompt.vision import render_vision_segments


def build_prompts(
    event: ConversationEvent,
    *,
    text_model: bool,
    text_format: PromptFormat = PromptFormat.LG3_8B,
    base_categories: Mapping[PromptFormat, Sequence[Category]] | None = None,
) -> list[Prompt]:
    """One prompt per image (the full text, one image each: the model takes one image
    per prompt), or one text-only prompt when the conversation has no image.

    Text-only prompts use the vision template without an image, unless ``text_model``
    is set: then ``text_format`` names the text model's template (8B: its own; 1B:
    the vision one). ``base_categories`` (a tenant profile's lists, per format) replace
    Meta's as the list the event's own policy narrows or replaces. Raises
    ``ConversationNotSupported`` (stage ``validate``).
    """
    vision_base: Sequence[Category] = DEFAULT_CATEGORIES
    text_base: Sequence[Category] = LG3_8B_CATEGORIES
    if base_categories is not None:
        vision_base = base_categories[PromptFormat.LG3_VISION]
        text_base = base_categories[PromptFormat.LG3_8B]
    conversation = normalize(event)
    role = conversation.assessed_role
    images = conversation.images()
    if images:
        categories = active_categories(event.policy, vision_base)
        segments = render_vision_segments(conversation, categories, with_image=True)
        fmt = PromptFormat.LG3_VISION
    elif text_model and text_format is PromptFormat.LG3_8B:
        categories = active_categories(event.policy, text_base)
        segments = render_text_segments(conversation, categories)
        fmt = PromptFormat.LG3_8B
    else:
        categories = active_categories(event.policy, vision_base)
        segments = render_vision_segments(conversation, categories, with_image=False)
        fmt = PromptFormat.LG3_VISION
    keys = category_keys(categories)
    digest = hash_categories(categories)
    if not images:
        return [Prompt(segments, None, role, keys, digest, fmt)]
    return [Prompt(segments, image, role, keys, digest, fmt) for image in images]
