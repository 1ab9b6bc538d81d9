"""The pieces the pipeline calls per image: match_image, matched_image, the fields."""

from __future__ import annotations

import numpy as np
from hashbank_helpers import md5_entry, near, pdq_entry, random_pdq

from schemas.verdict import HashMatch, ImageVerdict
from worker.hashbank import (
    HashBank,
    ImageHashes,
    image_hash_fields,
    match_image,
    matched_image,
    skips_model,
)

MD5 = "00112233445566778899aabbccddeeff"


def test_low_quality_pdq_is_not_matched_but_md5_is() -> None:
    rng = np.random.default_rng(0)
    bank = HashBank()
    pdq = random_pdq(rng)
    bank.put(pdq_entry(pdq))
    bank.put(md5_entry(MD5))
    good = ImageHashes(pdq=near(pdq, 10, rng), pdq_quality=80, md5="f" * 32)
    hit = match_image(bank, good)
    assert hit is not None and hit.distance == 10
    assert match_image(bank, ImageHashes(pdq=pdq, pdq_quality=49, md5="f" * 32)) is None
    assert match_image(bank, ImageHashes(pdq=pdq, pdq_quality=49, md5="f" * 32), min_quality=0)
    exact = match_image(bank, ImageHashes(pdq=pdq, pdq_quality=0, md5=MD5))
    assert exact is not None and exact.signal == "md5"


def test_a_match_becomes_an_unsafe_image_with_the_audit_trail() -> None:
    rng = np.random.default_rng(1)
    bank = HashBank()
    pdq = random_pdq(rng)
    bank.put(pdq_entry(pdq, categories=["S12", "S4"], label="case 9"))
    hashes = ImageHashes(pdq=near(pdq, 7, rng), pdq_quality=100, md5=MD5)
    hit = match_image(bank, hashes)
    assert hit is not None
    result = matched_image(hit)
    assert result.unsafe and result.unsafe_score == 1.0
    assert result.categories == ("S4", "S12")
    assert result.hash_match == HashMatch(
        bank="takedowns", label="case 9", distance=7, signal="pdq"
    )
    assert matched_image(hit, ("S1", "S12")).categories == ("S1", "S4", "S12")  # classify_too
    verdict = ImageVerdict(
        s3_uri="s3://b/k.jpg",
        sha256="0" * 64,
        verdict="unsafe",
        categories=list(result.categories),
        unsafe_score=result.unsafe_score,
        **image_hash_fields(hashes, hit),
    )
    assert verdict.pdq == hashes.pdq and verdict.md5 == MD5
    assert verdict.hash_match == result.hash_match
    assert image_hash_fields(None, None) == {"pdq": None, "md5": None, "hash_match": None}
    assert skips_model("block", hit) and not skips_model("classify_too", hit)
    assert not skips_model("block", None)
