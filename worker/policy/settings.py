"""What a policy profile says, as validated models (pydantic, strict: TOML has types).

``ProfileTable`` is one table of the file as written (every key optional: unset keys
inherit); ``ProfileSettings`` is a profile's effective settings after inheritance.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.conversation import CATEGORY_KEY_PATTERN
from schemas.verdict import Action

CategoryKey = Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Description = Annotated[str, Field(min_length=1, max_length=2000)]
Categories = Annotated[dict[CategoryKey, Description], Field(min_length=1, max_length=32)]
ExcludedKeys = Annotated[list[CategoryKey], Field(max_length=32)]
Thresholds = Annotated[dict[CategoryKey, Score], Field(max_length=32)]
Band = Annotated[list[Score], Field(min_length=2, max_length=2)]
Mode = Literal["enforce", "observe"]
OnError = Literal["dead_letter", "allow", "block"]

__all__ = ["Action", "DefaultsTable", "Mode", "OnError", "ProfileSettings", "ProfileTable"]


class ProfileSettings(BaseModel):
    """A profile's effective settings. The defaults are today's behaviour without a
    policy file: one threshold, no band, no sampling, block unsafe, allow safe."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    categories: Categories | None = Field(
        None, description="replaces the template's category list (None: Meta's S1-S13/S14)"
    )
    excluded_category_keys: ExcludedKeys = Field(default_factory=list)
    unsafe_threshold: Score = 0.5
    category_thresholds: Thresholds = Field(default_factory=dict)
    review_band: Band | None = None
    audit_sample_rate: Score = 0.0
    mode: Mode = "enforce"
    on_error: OnError = "dead_letter"
    allow_event_policy: bool = True
    seed: Annotated[str, Field(max_length=256)] = ""


class ProfileTable(BaseModel):
    """``[tenants.<tenant_id>]`` as written: a key that is present overrides, whole."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    categories: Categories | None = None
    excluded_category_keys: ExcludedKeys | None = None
    unsafe_threshold: Score | None = None
    category_thresholds: Thresholds | None = None
    review_band: Band | None = None
    audit_sample_rate: Score | None = None
    mode: Mode | None = None
    on_error: OnError | None = None
    allow_event_policy: bool | None = None
    seed: Annotated[str, Field(max_length=256)] | None = None


class DefaultsTable(ProfileTable):
    """``[defaults]``: every profile key, plus the file-wide ``require_known_tenant``."""

    require_known_tenant: bool | None = None
