"""Known-bad image banks: PDQ and MD5 hashes of images already known to violate policy.

Hash every decoded image (``hash_image``), look it up (``match_image``) in a ``HashBank``
that a ``BankFollower`` keeps equal to the compacted bank topic; a match is unsafe with
the bank's categories, score 1.0, without a model call (``HASH_MATCH_ACTION=block``).
"""

from worker.hashbank.bank import BankMatch, HashBank, Update
from worker.hashbank.exceptions import BadBankRecord, HashBankError, InvalidHash
from worker.hashbank.follower import BankFollower, bank_consumer_kwargs, build_bank_consumer
from worker.hashbank.hashing import ImageHashes, hash_image, md5_hex, pdq_hash
from worker.hashbank.matching import (
    MIN_PDQ_QUALITY,
    HashMatchAction,
    MatchedImage,
    image_hash_fields,
    match_image,
    matched_image,
    skips_model,
)
from worker.hashbank.records import entry_record, parse_record, tombstone_key

__all__ = [
    "MIN_PDQ_QUALITY",
    "BadBankRecord",
    "BankFollower",
    "BankMatch",
    "HashBank",
    "HashBankError",
    "HashMatchAction",
    "ImageHashes",
    "InvalidHash",
    "MatchedImage",
    "Update",
    "bank_consumer_kwargs",
    "build_bank_consumer",
    "entry_record",
    "hash_image",
    "image_hash_fields",
    "match_image",
    "matched_image",
    "md5_hex",
    "parse_record",
    "pdq_hash",
    "skips_model",
    "tombstone_key",
]
