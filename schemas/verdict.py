"""VerdictEvent v1: the output contract (Kafka key = conversation_id)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.conversation import CATEGORY_KEY_PATTERN

CategoryKey = Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]


class ImageVerdict(BaseModel):
    """The verdict of one prompt that carried one image."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    s3_uri: str
    sha256: str
    verdict: Literal["safe", "unsafe"]
    categories: list[CategoryKey]
    unsafe_score: Score


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    id: str
    revision: str


class SourcePosition(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class VerdictEvent(BaseModel):
    """One verdict per consumed ConversationEvent."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    schema_version: Literal[1] = 1
    event_id: str
    conversation_id: str
    tenant_id: str | None = None
    verdict: Literal["safe", "unsafe"]
    categories: list[CategoryKey]
    unsafe_score: Score
    classified_role: Literal["user", "assistant"]
    images: list[ImageVerdict]
    model: ModelInfo
    policy_hash: Annotated[str, Field(description="sha256 of the rendered category list")]
    source: SourcePosition
    worker_id: str
    latency_ms: Annotated[float, Field(ge=0.0)]
    processed_at: AwareDatetime
