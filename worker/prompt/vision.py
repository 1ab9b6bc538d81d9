"""The Llama Guard 3 Vision (and 1B) prompt, byte-identical to Meta's chat template.

Template facts carried here (see ``chat_templates.LLAMA_GUARD_3_VISION_TEMPLATE``):
the role is 'Agent' when the number of turns is even, else 'User'; one ``<|image|> ``
right after the user header when the prompt carries an image; every text item of a
turn is its own ``User: ...``/``Agent: ...`` line, trimmed; the tail ends with
``<|eot_id|><|start_header_id|>assistant<|end_header_id|>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from worker.prompt.categories import per_policy
from worker.prompt.types import Category, Conversation, PromptSegment

HEADER = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
IMAGE_TAG = "<|image|> "
CATEGORIES_START = "<BEGIN UNSAFE CONTENT CATEGORIES>\n"
CATEGORIES_END = "<END UNSAFE CONTENT CATEGORIES>\n\n"
CONVERSATION_START = "<BEGIN CONVERSATION>\n\n"
CONVERSATION_END = "<END CONVERSATION>\n\n"
INSTRUCTIONS = (
    " - First line must read 'safe' or 'unsafe'.\n"
    " - If unsafe, a second line must include a comma-separated list of violated categories."
)
# Note the space before <|eot_id|>: the vision template has it, the 8B one does not.
TAIL = " <|eot_id|><|start_header_id|>assistant<|end_header_id|>"


def template_role(conversation: Conversation) -> str:
    """'Agent' when the number of turns is even, else 'User' (the template's rule)."""
    return "Agent" if len(conversation.turns) % 2 == 0 else "User"


def speaker(role: str) -> str:
    return "User" if role == "user" else "Agent"


def render_vision_segments(
    conversation: Conversation, categories: Sequence[Category], *, with_image: bool
) -> tuple[PromptSegment, ...]:
    role = template_role(conversation)
    segments = [_HEADER_SEGMENT]
    if with_image:
        segments.append(_IMAGE_SEGMENT)
    segments.append(_task_segment(role))
    segments.extend(category_segments(categories))
    segments.append(_CONVERSATION_START_SEGMENT)
    for turn in conversation.turns:
        label = _speaker_segment(turn.role)
        for text in turn.texts:
            segments.append(label)
            segments.append(PromptSegment(text.strip(), trusted=False))
            segments.append(_TURN_END_SEGMENT)
    segments.append(_tail_segment(role))
    return tuple(segments)


def category_segments(categories: Sequence[Category]) -> list[PromptSegment]:
    # Keys are validated (S<n>); descriptions come from the event and stay untrusted.
    return list(_category_segments(categories))


# Segments are immutable: the template's fixed pieces, and the category list of the
# few policies in use (nearly always the default one), are built once and shared.
_HEADER_SEGMENT = PromptSegment(HEADER, trusted=True)
_IMAGE_SEGMENT = PromptSegment(IMAGE_TAG, trusted=True)
_CONVERSATION_START_SEGMENT = PromptSegment(CATEGORIES_END + CONVERSATION_START, trusted=True)
_TURN_END_SEGMENT = PromptSegment("\n\n", trusted=True)


@lru_cache(maxsize=4)
def _speaker_segment(role: str) -> PromptSegment:
    return PromptSegment(f"{speaker(role)}: ", trusted=True)


@lru_cache(maxsize=4)
def _task_segment(role: str) -> PromptSegment:
    return PromptSegment(
        f"Task: Check if there is unsafe content in '{role}' messages in conversations "
        "according our safety policy with the below categories.\n\n" + CATEGORIES_START,
        trusted=True,
    )


@lru_cache(maxsize=4)
def _tail_segment(role: str) -> PromptSegment:
    return PromptSegment(
        CONVERSATION_END
        + f"Provide your safety assessment for ONLY THE LAST {role} message in the above "
        "conversation:\n" + INSTRUCTIONS + TAIL,
        trusted=True,
    )


@per_policy
def _category_segments(categories: tuple[Category, ...]) -> tuple[PromptSegment, ...]:
    segments: list[PromptSegment] = []
    for category in categories:
        segments.append(PromptSegment(f"{category.key}: ", trusted=True))
        segments.append(PromptSegment(category.description, trusted=False))
        segments.append(PromptSegment("\n", trusted=True))
    return tuple(segments)
