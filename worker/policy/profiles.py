"""Profiles: a tenant's effective settings, their version, and the categories its
prompts start from; ``PolicySet``: every profile of one policy file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from schemas.conversation import Policy, category_number
from schemas.verdict import PolicyRef
from worker.policy.settings import ProfileSettings
from worker.prompt.categories import DEFAULT_CATEGORIES, LG3_8B_CATEGORIES, active_categories
from worker.prompt.types import Category, PromptFormat

BUILTIN = "builtin"
DEFAULTS = "defaults"

# The category list each prompt format starts from before any policy.
TEMPLATE_CATEGORIES: Mapping[PromptFormat, tuple[Category, ...]] = MappingProxyType(
    {PromptFormat.LG3_VISION: DEFAULT_CATEGORIES, PromptFormat.LG3_8B: LG3_8B_CATEGORIES}
)


@dataclass(frozen=True)
class Profile:
    """One tenant profile, ready to use.

    ``prompt_categories`` is what ``build_prompts(..., base_categories=...)`` takes: per
    prompt format, the list an event's own ``policy`` then narrows or replaces. The
    tuples are built once per load, so the prompt cache recognises them by identity.
    """

    name: str
    settings: ProfileSettings
    version: str
    prompt_categories: Mapping[PromptFormat, tuple[Category, ...]]

    @cached_property
    def ref(self) -> PolicyRef:
        # Once per profile, not per verdict.
        return PolicyRef(tenant_profile=self.name, version=self.version)


def make_profile(name: str, settings: ProfileSettings) -> Profile:
    """Raises ``ConversationNotSupported`` when the settings exclude every category."""
    return Profile(
        name=name,
        settings=settings,
        version=profile_version(settings),
        prompt_categories=MappingProxyType(
            {
                fmt: base_categories(settings, template)
                for fmt, template in TEMPLATE_CATEGORIES.items()
            }
        ),
    )


def base_categories(
    settings: ProfileSettings, template: tuple[Category, ...]
) -> tuple[Category, ...]:
    """The profile's list for one template: its ``categories`` replace the template's,
    its ``excluded_category_keys`` drop keys (the others keep their numbers), exactly as
    an event's policy does."""
    if settings.categories is None and not settings.excluded_category_keys:
        return template  # the very tuple: the prompt cache's identity fast path
    policy = Policy(
        categories=settings.categories, excluded_category_keys=settings.excluded_category_keys
    )
    return active_categories(policy, template)


def canonical_settings(settings: ProfileSettings) -> dict[str, Any]:
    """The settings as plain JSON values, order-free where order means nothing.

    ``categories`` keeps its order (the template renders it in order) as a list of
    ``[key, description]`` pairs; excluded keys are a set, sorted by number.
    """
    data = settings.model_dump(mode="json")
    if settings.categories is not None:
        data["categories"] = [[key, text] for key, text in settings.categories.items()]
    data["excluded_category_keys"] = sorted(
        set(settings.excluded_category_keys), key=category_number
    )
    return data


def profile_version(settings: ProfileSettings) -> str:
    """sha256 (hex) of the canonical JSON of the effective settings."""
    text = json.dumps(
        canonical_settings(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PolicySet:
    """The profiles of one policy file (or the built-in one without a file)."""

    defaults: Profile
    tenants: Mapping[str, Profile] = field(default_factory=dict)
    require_known_tenant: bool = False
    source: str | None = None  # the file's path; None: built in
    digest: str = ""  # sha256 of the file's bytes: tells a changed file from a touched one

    def profile_for(self, tenant_id: str | None) -> Profile | None:
        """The tenant's profile, else the defaults; None when the tenant is unknown (or
        missing) and ``require_known_tenant`` is set."""
        if tenant_id is not None:
            profile = self.tenants.get(tenant_id)
            if profile is not None:
                return profile
        return None if self.require_known_tenant else self.defaults

    def fallback_profile(self, tenant_id: str | None) -> Profile:
        """The profile whose ``on_error`` applies to a dead-lettered event: the tenant's,
        else the defaults (also for tenants that ``require_known_tenant`` refuses)."""
        if tenant_id is not None and tenant_id in self.tenants:
            return self.tenants[tenant_id]
        return self.defaults


def builtin_policy(unsafe_threshold: float = 0.5) -> PolicySet:
    """Behaviour without a policy file: UNSAFE_THRESHOLD, no band, no sampling."""
    return PolicySet(
        defaults=make_profile(BUILTIN, ProfileSettings(unsafe_threshold=unsafe_threshold))
    )
