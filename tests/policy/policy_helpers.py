"""Policy files and profiles for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.policy import PolicySet, Profile, ProfileSettings, make_profile, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def policy(text: str, *, unsafe_threshold: float = 0.5) -> PolicySet:
    return parse_policy(text.encode("utf-8"), source="test.toml", unsafe_threshold=unsafe_threshold)


def profile(**settings: Any) -> Profile:
    return make_profile("test", ProfileSettings(**settings))
