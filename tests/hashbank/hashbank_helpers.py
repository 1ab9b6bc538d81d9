"""Entries and hashes for the bank tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from schemas.hashbank import HashBankEntry

ADDED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def random_pdq(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def near(pdq: str, bits: int, rng: np.random.Generator) -> str:
    """``pdq`` with ``bits`` distinct bits flipped."""
    value = int(pdq, 16)
    for bit in rng.choice(256, bits, replace=False):
        value ^= 1 << int(bit)
    return f"{value:064x}"


def pdq_entry(
    pdq: str, bank: str = "takedowns", label: str = "case-1", **extra: object
) -> HashBankEntry:
    return HashBankEntry.model_validate(
        {
            "signal": "pdq",
            "hash": pdq,
            "bank": bank,
            "label": label,
            "categories": ["S4"],
            "added_at": ADDED_AT,
            **extra,
        }
    )


def md5_entry(
    md5: str, bank: str = "exact", label: str = "case-2", **extra: object
) -> HashBankEntry:
    return HashBankEntry.model_validate(
        {
            "signal": "md5",
            "hash": md5,
            "bank": bank,
            "label": label,
            "categories": ["S1", "S12"],
            "added_at": ADDED_AT,
            **extra,
        }
    )
