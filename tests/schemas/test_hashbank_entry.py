"""HashBankEntry: the value of a bank topic record, and the key that goes with it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import HashBankEntry, HashMatch, ImageVerdict
from schemas.hashbank import entry_key, split_entry_key

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def entry(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "signal": "pdq",
        "hash": PDQ,
        "bank": "takedowns-2026",
        "label": "case 4411",
        "categories": ["S4"],
        "added_at": "2026-11-24T09:00:00Z",
    }
    base.update(overrides)
    return base


def test_entry_round_trips_and_normalises() -> None:
    parsed = HashBankEntry.model_validate(entry(hash=PDQ.upper(), categories=["S12", "S4", "S12"]))
    assert parsed.hash == PDQ
    assert parsed.categories == ["S4", "S12"]
    assert parsed.key == f"pdq:{PDQ}"
    assert HashBankEntry.model_validate_json(parsed.model_dump_json()) == parsed
    md5 = HashBankEntry.model_validate(entry(signal="md5", hash=MD5))
    assert md5.key == f"md5:{MD5}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"hash": PDQ[:-1]},  # 63 digits
        {"hash": PDQ[:-1] + "g"},
        {"signal": "md5"},  # a PDQ-length hash under md5
        {"signal": "md5", "hash": MD5 + "00"},
        {"signal": "sha1"},
        {"bank": ""},
        {"bank": "has space"},
        {"bank": "x" * 65},
        {"label": "x" * 257},
        {"categories": []},
        {"categories": ["violence"]},
        {"added_at": "2026-11-24T09:00:00"},  # needs an offset
    ],
)
def test_invalid_entries_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HashBankEntry.model_validate(entry(**overrides))


def test_unknown_fields_are_ignored() -> None:
    parsed = HashBankEntry.model_validate_json(json.dumps(entry(future={"x": 1})))
    assert not hasattr(parsed, "future")


def test_keys_split_back_and_refuse_garbage() -> None:
    assert split_entry_key(entry_key("pdq", PDQ)) == ("pdq", PDQ)
    assert split_entry_key(f"md5:{MD5}") == ("md5", MD5)
    for bad in ["", PDQ, f"pdq:{MD5}", f"md5:{PDQ}", f"sha1:{MD5}", f"pdq:{PDQ.upper()}"]:
        with pytest.raises(ValueError):
            split_entry_key(bad)


def test_image_verdict_carries_hashes_and_match_optionally() -> None:
    plain = {
        "s3_uri": "s3://b/k.png",
        "sha256": "0" * 64,
        "verdict": "safe",
        "categories": [],
        "unsafe_score": 0.1,
    }
    assert ImageVerdict.model_validate(plain).hash_match is None
    matched = ImageVerdict.model_validate(
        {
            **plain,
            "verdict": "unsafe",
            "categories": ["S4"],
            "unsafe_score": 1.0,
            "pdq": PDQ,
            "md5": MD5,
            "hash_match": {"bank": "b", "label": "l", "distance": 7, "signal": "pdq"},
        }
    )
    assert matched.hash_match == HashMatch(bank="b", label="l", distance=7, signal="pdq")
    with pytest.raises(ValidationError):
        ImageVerdict.model_validate({**plain, "pdq": PDQ[:10]})
