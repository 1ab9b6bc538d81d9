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
from schemas.review import ReviewReason, ReviewRequest
from schemas.verdict import (
    Action,
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
