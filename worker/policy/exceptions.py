"""Errors of the policy layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file, at its TOML path (``tenants.kids.mode``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PolicyError(Exception):
    """Base class of policy errors."""


class PolicyFileError(PolicyError):
    """A policy file that cannot be used: every problem found, each with its TOML path.

    Messages name keys, tenant ids and category keys, never a value's content.
    """

    def __init__(self, source: str, issues: Sequence[PolicyIssue]) -> None:
        self.source = source
        self.issues = tuple(issues)
        super().__init__(f"{source}: {len(self.issues)} error(s): " + "; ".join(map(str, issues)))
