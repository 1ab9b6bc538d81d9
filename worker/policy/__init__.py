"""The decision layer: tenant policy profiles, actions, the review lane, fallbacks.

Pure functions over profiles, plus one small class that hot-reloads the file. The
worker wires them in: ``resolve`` at decode, ``decide`` after classify,
``review_request_value`` and ``fallback_verdict`` at publish, ``PolicyStore.poll`` in
its loop and ``PolicyStore.request_reload`` on SIGHUP.
"""

from worker.policy.decision import (
    Decision,
    decide,
    enforce_action,
    hash_match_decision,
    with_decision,
)
from worker.policy.exceptions import PolicyError, PolicyFileError, PolicyIssue
from worker.policy.fallback import (
    EventIdentity,
    Fallback,
    fallback_for,
    fallback_verdict,
    peek_identity,
)
from worker.policy.loading import load_policy_file, parse_policy
from worker.policy.profiles import (
    BUILTIN,
    DEFAULTS,
    PolicySet,
    Profile,
    builtin_policy,
    make_profile,
    profile_version,
)
from worker.policy.reload import PolicyStore
from worker.policy.resolution import PolicyRefusal, resolve
from worker.policy.review import review_request_value
from worker.policy.sampling import audit_sampled, sample_point
from worker.policy.settings import ProfileSettings

__all__ = [
    "BUILTIN",
    "DEFAULTS",
    "Decision",
    "EventIdentity",
    "Fallback",
    "PolicyError",
    "PolicyFileError",
    "PolicyIssue",
    "PolicyRefusal",
    "PolicySet",
    "PolicyStore",
    "Profile",
    "ProfileSettings",
    "audit_sampled",
    "builtin_policy",
    "decide",
    "enforce_action",
    "fallback_for",
    "fallback_verdict",
    "hash_match_decision",
    "load_policy_file",
    "make_profile",
    "parse_policy",
    "peek_identity",
    "profile_version",
    "resolve",
    "review_request_value",
    "sample_point",
    "with_decision",
]
