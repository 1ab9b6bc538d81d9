"""The bank topic's records ↔ bank updates (pure).

Key = ``"<signal>:<hash>"`` (UTF-8), value = the HashBankEntry as JSON, or no value (a
tombstone) to remove the key. Errors never quote the record: banks may hold hashes of
material whose identifiers are themselves sensitive.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.hashbank import HashBankEntry, entry_key, split_entry_key
from worker.hashbank.bank import Update
from worker.hashbank.exceptions import BadBankRecord


def parse_record(key: bytes | None, value: bytes | None) -> Update:
    """One consumed record → (key, entry) or (key, None) for a tombstone."""
    if key is None:
        raise BadBankRecord("record has no key")
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBankRecord("key is not UTF-8") from None
    try:
        split_entry_key(text)
    except ValueError as exc:
        raise BadBankRecord(f"bad key: {exc}") from None
    if value is None:
        return text, None
    try:
        entry = HashBankEntry.model_validate_json(value)
    except ValidationError as exc:
        fields = sorted(
            {".".join(str(p) for p in error["loc"]) or "value" for error in exc.errors()}
        )
        raise BadBankRecord(f"invalid entry ({', '.join(fields)})") from None
    if entry.key != text:
        raise BadBankRecord("the key is not the entry's signal:hash")
    return text, entry


def entry_record(entry: HashBankEntry) -> tuple[bytes, bytes]:
    """(key, value) to publish ``entry``."""
    return entry.key.encode(), entry.model_dump_json().encode()


def tombstone_key(signal: str, hash_hex: str) -> bytes:
    """The key whose null-valued record removes that hash."""
    return entry_key(signal, hash_hex).encode()
