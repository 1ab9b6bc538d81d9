"""Effective settings as text: the table ``guardstream policy check`` prints."""

from __future__ import annotations

from typing import Any

from schemas.conversation import category_number
from worker.policy.decision import format_threshold
from worker.policy.profiles import PolicySet, Profile, canonical_settings
from worker.policy.settings import ProfileSettings

ROWS = (
    "categories",
    "excluded_category_keys",
    "unsafe_threshold",
    "category_thresholds",
    "review_band",
    "audit_sample_rate",
    "mode",
    "on_error",
    "allow_event_policy",
    "seed",
    "version",
)


def profiles_in_order(policy: PolicySet) -> list[Profile]:
    return [policy.defaults, *(policy.tenants[t] for t in sorted(policy.tenants))]


def settings_table(policy: PolicySet) -> str:
    """One column per profile ([defaults] first, then tenants by id), one row per key."""
    profiles = profiles_in_order(policy)
    header = ["key", *(p.name for p in profiles)]
    body = [[row, *(cell(p, row) for p in profiles)] for row in ROWS]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    lines = [line(header), rule, *(line(r) for r in body)]
    lines.append(f"require_known_tenant: {str(policy.require_known_tenant).lower()}")
    return "\n".join(lines)


def cell(profile: Profile, row: str) -> str:
    settings: ProfileSettings = profile.settings
    if row == "version":
        return profile.version[:12]
    if row == "categories":
        if settings.categories is None:
            return "(template: S1-S13, 8B S1-S14)"
        return ",".join(settings.categories)
    if row == "excluded_category_keys":
        keys = sorted(set(settings.excluded_category_keys), key=category_number)
        return ",".join(keys) or "-"
    if row == "category_thresholds":
        items = sorted(settings.category_thresholds.items(), key=lambda kv: category_number(kv[0]))
        return " ".join(f"{k}={format_threshold(v)}" for k, v in items) or "-"
    if row == "review_band":
        band = settings.review_band
        return (
            "-" if band is None else f"[{format_threshold(band[0])}, {format_threshold(band[1])})"
        )
    if row in ("unsafe_threshold", "audit_sample_rate"):
        return format_threshold(getattr(settings, row))
    value = getattr(settings, row)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if value != "" else '""'


def settings_json(policy: PolicySet) -> dict[str, Any]:
    """The effective settings of every profile, with versions (``policy check --json``)."""
    return {
        "require_known_tenant": policy.require_known_tenant,
        "profiles": {
            p.name: {**canonical_settings(p.settings), "version": p.version}
            for p in profiles_in_order(policy)
        },
    }
