"""The Llama Guard 3 Vision (and 1B) prompt, byte-identical to Meta's chat template.

Template facts carried here (see ``chat_templates.LLAMA_GUARD_3_VISION_TEMPLATE``):
the role is 'Agent' when the number of turns is even, else 'User'; one ``<|image|> ``
right after the user header when the prompt carries an image; every text item of a
turn is its own ``User: ...``/``Agent: ...`` line, trimmed; the tail ends with
``<|eot_id|><|start_header_id|>assistant<|end_header_id|>``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    segments = [PromptSegment(HEADER, trusted=True)]
    if with_image:
        segments.append(PromptSegment(IMAGE_TAG, trusted=True))
    segments.append(
        PromptSegment(
            f"Task: Check if there is unsafe content in '{role}' messages in conversations "
            "according our safety policy with the below categories.\n\n" + CATEGORIES_START,
            trusted=True,
        )
    )
    segments.extend(category_segments(categories))
    segments.append(PromptSegment(CATEGORIES_END + CONVERSATION_START, trusted=True))
    for turn in conversation.turns:
        for text in turn.texts:
            segments.append(PromptSegment(f"{speaker(turn.role)}: ", trusted=True))
            segments.append(PromptSegment(text.strip(), trusted=False))
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


def category_segments(categories: Sequence[Category]) -> list[PromptSegment]:
    # Keys are validated (S<n>); descriptions come from the event and stay untrusted.
    segments: list[PromptSegment] = []
    for category in categories:
        segments.append(PromptSegment(f"{category.key}: ", trusted=True))
        segments.append(PromptSegment(category.description, trusted=False))
        segments.append(PromptSegment("\n", trusted=True))
    return segments
