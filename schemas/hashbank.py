"""HashBankEntry v1: one known-bad image hash on the compacted bank topic.

Kafka key = ``entry_key(signal, hash)`` (``"pdq:<64 hex>"`` or ``"md5:<32 hex>"``), value =
the entry as JSON; a tombstone (null value) under a key removes that hash. One entry per
hash: publishing the same hash again replaces it (another bank, label or categories).
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.conversation import CATEGORY_KEY_PATTERN, category_number

Signal = Literal["pdq", "md5"]
SIGNALS: tuple[Signal, ...] = ("pdq", "md5")
# Hex digits per signal: PDQ is 256 bits, MD5 128 bits.
HASH_HEX_LENGTH: dict[str, int] = {"pdq": 64, "md5": 32}
# Bank names become Prometheus label values: short, plain, few.
BANK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_HEX_DIGITS = frozenset("0123456789abcdef")

CategoryKey = Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]


class HashBankEntry(BaseModel):
    """A hash that identifies a known-violating image, and what to say when it matches."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    signal: Signal
    hash: Annotated[
        str, Field(description="lower-case hex: 64 digits for pdq, 32 for md5", max_length=64)
    ]
    bank: Annotated[str, Field(pattern=BANK_NAME_PATTERN)]
    label: Annotated[str, Field(max_length=256, description="audit trail, e.g. a case id")] = ""
    categories: Annotated[list[CategoryKey], Field(min_length=1)]
    added_at: AwareDatetime

    @field_validator("hash", mode="before")
    @classmethod
    def _lowercase_hash(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[str]) -> list[str]:
        return sorted(set(value), key=category_number)

    @field_validator("hash")
    @classmethod
    def _check_hash(cls, value: str, info: ValidationInfo) -> str:
        signal = info.data.get("signal")  # validated first: declared first
        return check_hash(signal, value) if signal is not None else value

    @property
    def key(self) -> str:
        return entry_key(self.signal, self.hash)


def check_hash(signal: str, value: str) -> str:
    """``value`` if it is a lower-case hex hash of ``signal``'s length; else ValueError."""
    if signal not in HASH_HEX_LENGTH:
        raise ValueError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}")
    want = HASH_HEX_LENGTH[signal]
    if len(value) != want or not _HEX_DIGITS.issuperset(value):
        raise ValueError(f"a {signal} hash is {want} lower-case hex digits")
    return value


def entry_key(signal: str, value: str) -> str:
    """The Kafka key of a bank entry: ``"<signal>:<hash>"``."""
    return f"{signal}:{check_hash(signal, value)}"


def split_entry_key(key: str) -> tuple[Signal, str]:
    """The signal and hash of a bank topic key; ValueError when it is not one."""
    signal, sep, value = key.partition(":")
    if not sep:
        raise ValueError("a bank key is '<signal>:<hash>'")
    check_hash(signal, value)
    return cast(Signal, signal), value
