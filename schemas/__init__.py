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
from schemas.hashbank import HashBankEntry
from schemas.review import ReviewReason, ReviewRequest
from schemas.verdict import (
    Action,
    HashMatch,
    ImageVerdict,
    ModelInfo,
    PolicyRef,
    SourcePosition,
    VerdictError,
    VerdictEvent,
)

__all__ = [
    "Action",
    "ConversationEvent",
    "DeadLetterHeaders",
    "ErrorStage",
    "EventLimits",
    "HashBankEntry",
    "HashMatch",
    "ImageContent",
    "ImageVerdict",
    "Message",
    "ModelInfo",
    "Policy",
    "PolicyRef",
    "ReviewReason",
    "ReviewRequest",
    "SourcePosition",
    "TextContent",
    "VerdictError",
    "VerdictEvent",
]
