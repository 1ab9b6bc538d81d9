"""guardstream event contracts (v1). Depends on pydantic only, never on `worker`."""

from schemas.conversation import (
    ConversationEvent,
    EventLimits,
    ImageContent,
    Message,
    Policy,
    TextContent,
)
from schemas.dead_letter import DeadLetterHeaders, ErrorStage
from schemas.verdict import ImageVerdict, ModelInfo, SourcePosition, VerdictEvent

__all__ = [
    "ConversationEvent",
    "DeadLetterHeaders",
    "ErrorStage",
    "EventLimits",
    "ImageContent",
    "ImageVerdict",
    "Message",
    "ModelInfo",
    "Policy",
    "SourcePosition",
    "TextContent",
    "VerdictEvent",
]
