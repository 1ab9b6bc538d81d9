"""Which profile judges an event, and whether the event may bring its own policy.

Precedence of the categories a prompt lists: the template's (Meta's S1-S13, or S1-S14
for the 8B) < ``[defaults]`` < ``[tenants.<id>]`` < the event's own ``policy`` (which
narrows or replaces the profile's list exactly as it narrows or replaces Meta's
without a policy file). The decode stage calls ``resolve`` and passes
``profile.prompt_categories`` to ``build_prompts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.conversation import ConversationEvent
from schemas.dead_letter import ErrorStage
from worker.policy.profiles import PolicySet, Profile


@dataclass(frozen=True)
class PolicyRefusal:
    """The policy refuses the event: dead-letter it with this stage and class."""

    error_class: str  # "UnknownTenant" | "EventPolicyNotAllowed"
    message: str
    stage: ErrorStage = ErrorStage.VALIDATE


def resolve(event: ConversationEvent, policy: PolicySet) -> Profile | PolicyRefusal:
    """The profile for ``event`` (pure, a dict lookup), or why it is refused."""
    profile = policy.profile_for(event.tenant_id)
    if profile is None:
        return PolicyRefusal(
            "UnknownTenant",
            "the event has no tenant_id and the policy requires a known tenant"
            if event.tenant_id is None
            else "the event's tenant_id has no profile and the policy requires a known tenant",
        )
    if event.policy is not None and not profile.settings.allow_event_policy:
        return PolicyRefusal(
            "EventPolicyNotAllowed",
            f"profile {profile.name} does not allow an event's own policy field",
        )
    return profile
