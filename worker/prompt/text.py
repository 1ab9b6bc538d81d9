"""The Llama Guard 3 8B (text) prompt, byte-identical to Meta's 8B chat template.

Differences from the vision template it must keep: a space before
``<|begin_of_text|>``, one line per turn (content is a string), S14 in the default
list, and no space before ``<|eot_id|>``. The 8B template has no categories
variable; guardstream renders an event's policy in the same list (the model card's
way to customise categories), so without a policy the bytes equal the template's.
A turn's text items are joined with a blank line into its one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.prompt.types import Category, Conversation, PromptSegment
from worker.prompt.vision import (
    CATEGORIES_END,
    CATEGORIES_START,
    CONVERSATION_END,
    CONVERSATION_START,
    INSTRUCTIONS,
    category_segments,
    speaker,
    template_role,
)

HEADER = " <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
TAIL = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
ITEM_SEPARATOR = "\n\n"


def turn_content(texts: Sequence[str]) -> str:
    """The string content of one turn, as the 8B template's ``content.strip()`` sees it."""
    return ITEM_SEPARATOR.join(text.strip() for text in texts).strip()


def render_text_segments(
    conversation: Conversation, categories: Sequence[Category]
) -> tuple[PromptSegment, ...]:
    role = template_role(conversation)
    segments = [
        PromptSegment(
            HEADER
            + f"Task: Check if there is unsafe content in '{role}' messages in conversations "
            "according our safety policy with the below categories.\n\n" + CATEGORIES_START,
            trusted=True,
        ),
        *category_segments(categories),
        PromptSegment(CATEGORIES_END + CONVERSATION_START, trusted=True),
    ]
    for turn in conversation.turns:
        segments.append(PromptSegment(f"{speaker(turn.role)}: ", trusted=True))
        segments.append(PromptSegment(turn_content(turn.texts), trusted=False))
        segments.append(PromptSegment("\n\n", trusted=True))
    segments.append(
        PromptSegment(
            CONVERSATION_END
            + f"Provide your safety assessment for ONLY THE LAST {role} message in the above "
            "conversation:\n" + INSTRUCTIONS + TAIL,
            trusted=True,
        )
    )
    return tuple(segments)
