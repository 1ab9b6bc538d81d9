"""What the pipeline calls per image: look it up, and the result fields of a match (pure
apart from the bank's lookup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from schemas.conversation import category_number
from schemas.verdict import HashMatch
from worker.hashbank.bank import BankMatch, HashBank
from worker.hashbank.hashing import ImageHashes

HashMatchAction = Literal["block", "classify_too"]
MIN_PDQ_QUALITY = 50
"""PDQ hashes below this quality are not matched (threatexchange's PdqSignal uses the same
threshold: "too unreliable to match on"): a featureless image's hash is rounding noise
that a re-encode changes entirely (tests/hashbank/test_hashbank_hashing.py). MD5 still matches."""


def match_image(
    bank: HashBank, hashes: ImageHashes, *, min_quality: int = MIN_PDQ_QUALITY
) -> BankMatch | None:
    """The bank entry this image matches: its MD5 exactly, else its PDQ hash within the
    bank's distance (only when the hash's quality is at least ``min_quality``)."""
    pdq = hashes.pdq if hashes.pdq_quality >= min_quality else None
    return bank.match(pdq=pdq, md5=hashes.md5)


def skips_model(action: HashMatchAction, match: BankMatch | None) -> bool:
    """``block``: a matched image's prompt is not sent to the model."""
    return match is not None and action == "block"


@dataclass(frozen=True)
class MatchedImage:
    """The image-level result of a bank match (what the model's result would have been)."""

    categories: tuple[str, ...]
    hash_match: HashMatch
    unsafe: bool = True
    unsafe_score: float = 1.0


def matched_image(match: BankMatch, model_categories: tuple[str, ...] = ()) -> MatchedImage:
    """Unsafe, score 1.0, the bank's categories (with ``classify_too``, united with the
    model's), and the audit trail."""
    categories = set(match.entry.categories) | set(model_categories)
    return MatchedImage(
        categories=tuple(sorted(categories, key=category_number)),
        hash_match=match.to_schema(),
    )


def image_hash_fields(hashes: ImageHashes | None, match: BankMatch | None) -> dict[str, Any]:
    """The ImageVerdict fields the banks add: ``pdq``, ``md5``, ``hash_match``."""
    return {
        "pdq": hashes.pdq if hashes is not None else None,
        "md5": hashes.md5 if hashes is not None else None,
        "hash_match": match.to_schema() if match is not None else None,
    }
