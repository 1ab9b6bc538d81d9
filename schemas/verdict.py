"""VerdictEvent v1: the output contract (Kafka key = conversation_id).

The decision fields (``category_scores``, ``action``, ``reasons``, ``would_action``,
``policy``, ``error``) were added to v1 additively: each has a default, so records
written before them still parse. ``verdict: "error"`` is a fallback verdict, written
only for tenants whose policy sets ``on_error`` to ``allow`` or ``block``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.conversation import CATEGORY_KEY_PATTERN
from schemas.dead_letter import ErrorStage
from schemas.hashbank import Signal

CategoryKey = Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Action = Literal["allow", "review", "block"]
CategoryScores = Annotated[
    dict[CategoryKey, Score],
    Field(
        description="Per active category key: P(unsafe) × P(first listed category = key | "
        "unsafe), renormalised over the active keys; sums to unsafe_score."
    ),
]


class HashMatch(BaseModel):
    """The known-bad image bank entry an image matched (then the model did not see it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bank: str
    label: str
    distance: Annotated[int, Field(ge=0, le=256, description="Hamming distance; 0 for md5")]
    signal: Signal


class ImageVerdict(BaseModel):
    """The verdict of one prompt that carried one image."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    s3_uri: str
    sha256: str
    verdict: Literal["safe", "unsafe"]
    categories: list[CategoryKey]
    unsafe_score: Score
    category_scores: CategoryScores = Field(default_factory=dict)
    pdq: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$", description="PDQ hash")] = None
    md5: Annotated[str | None, Field(pattern=r"^[0-9a-f]{32}$", description="of the bytes")] = None
    hash_match: HashMatch | None = None


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    id: str
    revision: str


class SourcePosition(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class PolicyRef(BaseModel):
    """Which tenant profile judged the event, and which version of it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_profile: Annotated[
        str,
        Field(
            description="'builtin' (no policy file), 'defaults', or 'tenants.<tenant_id>': "
            "the policy file's table that applied"
        ),
    ]
    version: Annotated[
        str, Field(description="sha256 (hex) of the profile's effective settings, canonical JSON")
    ]


class VerdictError(BaseModel):
    """Why a fallback verdict has no classification: the dead letter's stage and class."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    stage: ErrorStage
    error_class: Annotated[str, Field(alias="class")]


class VerdictEvent(BaseModel):
    """One verdict per consumed ConversationEvent."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    schema_version: Literal[1] = 1
    event_id: str
    conversation_id: str
    tenant_id: str | None = None
    verdict: Annotated[
        Literal["safe", "unsafe", "error"],
        Field(
            description="The model's answer at UNSAFE_THRESHOLD; 'error': a fallback verdict "
            "(the event was dead-lettered, see `error`)"
        ),
    ]
    categories: list[CategoryKey]
    unsafe_score: Annotated[Score, Field(description="P(unsafe); 0 in a fallback verdict")]
    classified_role: Annotated[
        Literal["user", "assistant"] | None, Field(description="null only in a fallback verdict")
    ]
    images: list[ImageVerdict]
    model: ModelInfo
    policy_hash: Annotated[
        str | None,
        Field(description="sha256 of the rendered category list; null only in a fallback verdict"),
    ]
    source: SourcePosition
    worker_id: str
    latency_ms: Annotated[float, Field(ge=0.0)]
    processed_at: AwareDatetime
    category_scores: CategoryScores = Field(default_factory=dict)
    action: Annotated[
        Action | None,
        Field(description="The policy's decision; null only in records older than the field"),
    ] = None
    reasons: Annotated[
        list[str],
        Field(
            description="Machine-readable: 'unsafe_score>=0.50', 'unsafe_score<0.50', "
            "'S1>=0.10', 'review_band', 'audit', 'observe', 'error'"
        ),
    ] = Field(default_factory=list)
    would_action: Annotated[
        Action | None,
        Field(description="Observe mode only: the action enforce mode would have taken"),
    ] = None
    policy: PolicyRef | None = None
    error: Annotated[VerdictError | None, Field(description="Fallback verdicts only")] = None

    @model_validator(mode="after")
    def _fallback_fields(self) -> VerdictEvent:
        if self.verdict == "error":
            if self.error is None or self.action is None:
                raise ValueError("a fallback verdict (verdict 'error') needs `error` and `action`")
        else:
            if self.error is not None:
                raise ValueError("`error` is only set in fallback verdicts (verdict 'error')")
            if self.classified_role is None or self.policy_hash is None:
                raise ValueError(
                    "classified_role and policy_hash are null only in fallback verdicts"
                )
        return self
