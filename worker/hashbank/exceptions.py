"""Errors of the known-bad image banks."""

from __future__ import annotations


class HashBankError(Exception):
    """Base class."""


class InvalidHash(HashBankError, ValueError):
    """A hash that is not the right number of hex digits for its signal."""


class BadBankRecord(HashBankError):
    """A bank topic record that is not a valid entry or tombstone (logged and skipped)."""
