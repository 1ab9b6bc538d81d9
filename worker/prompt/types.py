"""Values of the prompt stage: normalised conversations and rendered prompts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from schemas.conversation import ImageContent

Role = Literal["user", "assistant"]


class PromptFormat(StrEnum):
    """Which Llama Guard 3 chat template a prompt follows."""

    # Llama Guard 3 Vision (11B) and Llama Guard 3 1B: list content, policy categories, S1-S13.
    LG3_VISION = "lg3_vision"
    # Llama Guard 3 8B: string content, S1-S14, a space before <|begin_of_text|>.
    LG3_8B = "lg3_8b"


@dataclass(frozen=True)
class Category:
    key: str
    description: str


@dataclass(slots=True, unsafe_hash=True)
class Turn:
    """One speaker's turn: consecutive messages of one role, merged."""

    role: Role
    texts: tuple[str, ...]
    images: tuple[ImageContent, ...]


@dataclass(slots=True, unsafe_hash=True)
class Conversation:
    """A conversation the Llama Guard templates accept: alternating turns, user first,
    ending with the assessed turn."""

    turns: tuple[Turn, ...]

    @property
    def assessed_role(self) -> Role:
        return self.turns[-1].role

    def images(self) -> list[ImageContent]:
        return [image for turn in self.turns for image in turn.images]


@dataclass(slots=True, unsafe_hash=True)
class PromptSegment:
    """A piece of prompt text.

    ``trusted`` text comes from the template: its special-token strings are real special
    tokens. Untrusted text (messages, category descriptions) comes from the event and
    must never produce a special token.
    """

    text: str
    trusted: bool


@dataclass(slots=True, unsafe_hash=True)
class Prompt:
    """One prompt the model sees: the rendered template plus at most one image."""

    segments: tuple[PromptSegment, ...]
    image: ImageContent | None
    assessed_role: Role
    category_keys: tuple[str, ...]
    policy_hash: str
    format: PromptFormat

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)
