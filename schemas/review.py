"""ReviewRequest v1: one record per event that goes to human review
(review topic, Kafka key = conversation_id).

``original_value`` is the consumed record's value as text, exactly as consumed
(it decoded as UTF-8, or the event would have been dead-lettered): not the parsed
event, which drops unknown fields and normalises others. Reviewers see what was
judged, byte for byte, and can check it against ``verdict.source``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.verdict import VerdictEvent

ReviewReason = Literal["band", "audit"]


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    reason: Annotated[
        ReviewReason,
        Field(
            description="'band': action review (unsafe score in the tenant's review band); "
            "'audit': an allowed event sampled for audit"
        ),
    ]
    verdict: VerdictEvent
    original_value: Annotated[
        str | None,
        Field(
            description="The consumed ConversationEvent value, UTF-8 text exactly as consumed; "
            "null when it was too large to include (see `omitted`)"
        ),
    ]
    omitted: Annotated[
        str | None,
        Field(
            description="'value=<bytes>' when original_value was left out because the record "
            "would exceed the producer's size limit; read it at verdict.source instead"
        ),
    ] = None

    @model_validator(mode="after")
    def _value_or_omitted(self) -> ReviewRequest:
        if (self.original_value is None) == (self.omitted is None):
            raise ValueError("exactly one of original_value and omitted is set")
        return self
