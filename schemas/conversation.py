"""ConversationEvent v1: the input contract (Kafka key = conversation_id).

Limits that operators tune (messages per event, text sizes, images per event)
are passed as validation context, so one model serves every deployment::

    ConversationEvent.model_validate_json(raw, context={"limits": EventLimits(max_messages=16)})
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

CATEGORY_KEY_PATTERN = r"^S[1-9][0-9]?$"
S3_URI_PATTERN = r"^s3://[^/]+/.+$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


@dataclass(frozen=True)
class EventLimits:
    """Size limits enforced on every event; the defaults are the documented contract."""

    max_messages: int = 64
    max_items_per_message: int = 32
    max_text_chars: int = 16_000
    max_total_text_chars: int = 64_000
    max_images: int = 8


DEFAULT_LIMITS = EventLimits()


class TextContent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["text"]
    text: str


class ImageContent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["image"]
    s3_uri: Annotated[str, Field(pattern=S3_URI_PATTERN, max_length=1024)]
    sha256: Annotated[str | None, Field(pattern=SHA256_PATTERN)] = None

    @field_validator("sha256", mode="before")
    @classmethod
    def _lowercase_sha256(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


Content = Annotated[TextContent | ImageContent, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Literal["user", "assistant"]
    content: Annotated[list[Content], Field(min_length=1)]


class Policy(BaseModel):
    """Optional per-event policy: replace the category list and/or drop categories."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: (
        Annotated[
            dict[
                Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)],
                Annotated[str, Field(min_length=1, max_length=2000)],
            ],
            Field(min_length=1, max_length=32),
        ]
        | None
    ) = None
    excluded_category_keys: Annotated[
        list[Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]], Field(max_length=32)
    ] = Field(default_factory=list)


class ConversationEvent(BaseModel):
    """A conversation (or the tail of one) to moderate."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    conversation_id: Annotated[str, Field(min_length=1, max_length=256)]
    tenant_id: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    created_at: AwareDatetime
    messages: Annotated[list[Message], Field(min_length=1)]
    classify: Literal["auto", "prompt", "response"] = "auto"
    policy: Policy | None = None

    @model_validator(mode="after")
    def _enforce_limits(self, info: ValidationInfo) -> ConversationEvent:
        limits = _limits_from(info)
        if len(self.messages) > limits.max_messages:
            raise ValueError(f"too many messages: {len(self.messages)} > {limits.max_messages}")
        total_text = 0
        images = 0
        for index, message in enumerate(self.messages):
            if len(message.content) > limits.max_items_per_message:
                raise ValueError(
                    f"messages[{index}] has {len(message.content)} content items "
                    f"> {limits.max_items_per_message}"
                )
            for item in message.content:
                if isinstance(item, TextContent):
                    if len(item.text) > limits.max_text_chars:
                        raise ValueError(
                            f"messages[{index}] text of {len(item.text)} chars "
                            f"> {limits.max_text_chars}"
                        )
                    total_text += len(item.text)
                else:
                    images += 1
        if total_text > limits.max_total_text_chars:
            raise ValueError(f"total text of {total_text} chars > {limits.max_total_text_chars}")
        if images > limits.max_images:
            raise ValueError(f"too many images: {images} > {limits.max_images}")
        return self

    def image_items(self) -> list[ImageContent]:
        """Image items in conversation order."""
        return [
            item
            for message in self.messages
            for item in message.content
            if isinstance(item, ImageContent)
        ]


def _limits_from(info: ValidationInfo) -> EventLimits:
    context = info.context
    if isinstance(context, dict):
        limits = context.get("limits")
        if isinstance(limits, EventLimits):
            return limits
    return DEFAULT_LIMITS


def category_number(key: str) -> int:
    """`S10` -> 10; used to order category lists."""
    match = re.fullmatch(r"S([0-9]+)", key)
    if match is None:
        raise ValueError(f"not a category key: {key!r}")
    return int(match.group(1))
