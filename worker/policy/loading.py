"""Read and validate a policy file (TOML) into a ``PolicySet``.

    [defaults]             every tenant; also require_known_tenant
    [tenants.<tenant_id>]  overrides any key of [defaults], whole (tables too)

Every problem is collected, each with its TOML path, and raised at once as one
``PolicyFileError``: an operator fixes the file in one pass.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.policy.exceptions import PolicyFileError, PolicyIssue
from worker.policy.profiles import (
    DEFAULTS,
    TEMPLATE_CATEGORIES,
    PolicySet,
    Profile,
    make_profile,
)
from worker.policy.settings import DefaultsTable, ProfileSettings, ProfileTable
from worker.prompt.exceptions import ConversationNotSupported
from worker.prompt.types import PromptFormat

MAX_FILE_BYTES = 1_048_576
MAX_TENANT_ID_CHARS = 128  # as ConversationEvent.tenant_id
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOP_LEVEL = ("defaults", "tenants")


def load_policy_file(path: str | Path, *, unsafe_threshold: float = 0.5) -> PolicySet:
    """Read ``path``; raises ``PolicyFileError`` (unreadable, not TOML, invalid).

    ``unsafe_threshold`` (the worker's UNSAFE_THRESHOLD) is the default of
    ``[defaults].unsafe_threshold``.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyFileError(source, [PolicyIssue("", f"cannot read: {exc.strerror}")]) from None
    return parse_policy(data, source=source, unsafe_threshold=unsafe_threshold)


def parse_policy(data: bytes, *, source: str, unsafe_threshold: float = 0.5) -> PolicySet:
    """The file's bytes → its profiles (pure)."""
    if len(data) > MAX_FILE_BYTES:
        raise PolicyFileError(source, [PolicyIssue("", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyFileError(source, [PolicyIssue("", f"not UTF-8 at byte {exc.start}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(source, [PolicyIssue("", f"not TOML: {exc}")]) from None
    issues: list[PolicyIssue] = []
    policy = _build(document, unsafe_threshold, issues, source, hashlib.sha256(data).hexdigest())
    if issues or policy is None:
        raise PolicyFileError(source, issues)
    return policy


def _build(
    document: dict[str, Any],
    unsafe_threshold: float,
    issues: list[PolicyIssue],
    source: str,
    digest: str,
) -> PolicySet | None:
    for key in document:
        if key not in _TOP_LEVEL:
            issues.append(
                PolicyIssue(toml_key(key), "unknown table (expected [defaults], [tenants.<id>])")
            )
    raw_defaults = document.get("defaults", {})
    raw_tenants = document.get("tenants", {})
    if not isinstance(raw_defaults, dict):
        issues.append(PolicyIssue("defaults", "must be a table"))
        raw_defaults = {}
    if not isinstance(raw_tenants, dict):
        issues.append(PolicyIssue("tenants", "must be a table of [tenants.<tenant_id>] tables"))
        raw_tenants = {}

    base = ProfileSettings(unsafe_threshold=unsafe_threshold)
    inherited, defaults_ok = _validate_table(DefaultsTable, raw_defaults, DEFAULTS, issues)
    unsure = _unsure_keys(raw_defaults, inherited)
    require_known_tenant = bool(inherited.pop("require_known_tenant", False))
    origin = dict.fromkeys(inherited, DEFAULTS)  # key -> the table that set it, for messages
    defaults = _profile(DEFAULTS, DEFAULTS, base, inherited, origin, unsure, issues)

    tenants: dict[str, Profile] = {}
    for tenant_id, raw in raw_tenants.items():
        path = f"tenants.{toml_key(tenant_id)}"
        if not 1 <= len(tenant_id) <= MAX_TENANT_ID_CHARS:
            issues.append(PolicyIssue(path, f"tenant id must have 1-{MAX_TENANT_ID_CHARS} chars"))
            continue
        if not isinstance(raw, dict):
            issues.append(PolicyIssue(path, "must be a table"))
            continue
        if "require_known_tenant" in raw:
            issues.append(PolicyIssue(f"{path}.require_known_tenant", "only allowed in [defaults]"))
            raw = {k: v for k, v in raw.items() if k != "require_known_tenant"}
        own, ok = _validate_table(ProfileTable, raw, path, issues)
        profile = _profile(
            f"tenants.{tenant_id}",
            path,
            base,
            {**inherited, **own},
            {**origin, **dict.fromkeys(own, path)},
            (unsure - own.keys()) | _unsure_keys(raw, own),
            issues,
        )
        if profile is not None and ok:
            tenants[tenant_id] = profile
    if defaults is None or not defaults_ok:
        return None
    return PolicySet(defaults, tenants, require_known_tenant, source, digest)


def _validate_table(
    model: type[ProfileTable], raw: Mapping[str, Any], path: str, issues: list[PolicyIssue]
) -> tuple[dict[str, Any], bool]:
    """The keys the table sets, validated, and whether all of it was valid.

    A table with errors is refused, but what is valid in it (single keys, single
    entries of a sub-table) is kept, so the checks across keys still run and every
    error of the file is reported at once.
    """
    try:
        return model.model_validate(raw).model_dump(exclude_unset=True), True
    except ValidationError as exc:
        issues.extend(_issues_from(exc, path))
    salvaged: dict[str, Any] = {}
    for key, value in raw.items():
        if _valid(model, {key: value}):
            salvaged[key] = value
        elif isinstance(value, dict):
            entries = {k: v for k, v in value.items() if _valid(model, {key: {k: v}})}
            if entries and _valid(model, {key: entries}):
                salvaged[key] = entries
    return model.model_validate(salvaged).model_dump(exclude_unset=True), False


def _valid(model: type[ProfileTable], raw: Mapping[str, Any]) -> bool:
    try:
        model.model_validate(raw)
    except ValidationError:
        return False
    return True


def _unsure_keys(raw: Mapping[str, Any], kept: Mapping[str, Any]) -> set[str]:
    """Keys written in the table but not kept whole: checks that depend on them are
    skipped (their own error is reported already)."""
    return {key for key in raw if key not in kept or kept[key] != raw[key]}


def _profile(
    name: str,
    path: str,
    base: ProfileSettings,
    overrides: Mapping[str, Any],
    origin: Mapping[str, str],
    unsure: AbstractSet[str],
    issues: list[PolicyIssue],
) -> Profile | None:
    """Effective settings = base < overrides; then the checks across keys."""
    try:
        settings = ProfileSettings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:  # each key validated already; defensive
        issues.extend(_issues_from(exc, path))
        return None
    found = check_profile(settings, path, origin, unsure)
    profile = None
    if not {"categories", "excluded_category_keys"} & unsure:
        try:
            profile = make_profile(name, settings)
        except ConversationNotSupported:
            found.append(
                PolicyIssue(f"{path}.excluded_category_keys", "excludes every category of the list")
            )
    issues.extend(found)
    return None if found or unsure else profile


def check_profile(
    settings: ProfileSettings,
    path: str,
    origin: Mapping[str, str],
    unsure: AbstractSet[str] = frozenset(),
) -> list[PolicyIssue]:
    """What single keys cannot say: known category keys, a sane band.

    Category keys are checked in the table that writes them: an inherited threshold or
    exclusion of a key that a tenant's own ``categories`` lack is harmless (it never
    applies), as the template ignores unknown excluded keys. Keys in ``unsure`` had
    errors of their own: checks against them are skipped.
    """
    found: list[PolicyIssue] = []
    known = (
        set(settings.categories)
        if settings.categories is not None
        else {c.key for c in TEMPLATE_CATEGORIES[PromptFormat.LG3_8B]}
    )
    listing = "this profile's categories" if settings.categories is not None else "S1-S14"
    check_keys = "categories" not in unsure
    if check_keys and origin.get("category_thresholds") == path:
        for key in settings.category_thresholds:
            if key not in known:
                found.append(
                    PolicyIssue(
                        f"{path}.category_thresholds.{key}",
                        f"unknown category key (not in {listing})",
                    )
                )
    if check_keys and origin.get("excluded_category_keys") == path:
        for key in settings.excluded_category_keys:
            if key not in known:
                found.append(
                    PolicyIssue(
                        f"{path}.excluded_category_keys",
                        f"unknown category key {key} (not in {listing})",
                    )
                )
    band = settings.review_band
    if band is not None and not band[0] < band[1] and origin.get("review_band") == path:
        found.append(PolicyIssue(f"{path}.review_band", "needs low < high"))
    return found


def _issues_from(exc: ValidationError, path: str) -> list[PolicyIssue]:
    found = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [part for part in error["loc"] if part != "[key]"]
        where = path + "".join(
            f"[{part}]" if isinstance(part, int) else f".{toml_key(str(part))}" for part in loc
        )
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif "[key]" in error["loc"]:
            message = "not a category key (S1, S2, ...)"
        else:
            message = error["msg"]
        found.append(PolicyIssue(where, message))
    return found


def toml_key(key: str) -> str:
    """A key as TOML writes it in a dotted path: bare when it can be, else quoted."""
    if _BARE_KEY.fullmatch(key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
