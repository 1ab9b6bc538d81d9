"""Bank topic records → updates; bad ones are refused without quoting them."""

from __future__ import annotations

import json

import pytest
from hashbank_helpers import pdq_entry

from worker.hashbank import BadBankRecord, entry_record, parse_record, tombstone_key

PDQ = "ab" * 32


def test_entry_and_tombstone_round_trip() -> None:
    entry = pdq_entry(PDQ)
    key, value = entry_record(entry)
    assert key == f"pdq:{PDQ}".encode()
    assert parse_record(key, value) == (entry.key, entry)
    assert parse_record(tombstone_key("pdq", PDQ), None) == (entry.key, None)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, b"{}", "no key"),
        (b"\xff\xfe", None, "UTF-8"),
        (b"pdq:" + b"ab" * 31, None, "bad key"),
        (b"sha1:" + b"ab" * 20, None, "bad key"),
        (f"pdq:{PDQ}".encode(), b"not json", "invalid entry"),
        (f"pdq:{PDQ}".encode(), b'{"signal": "pdq"}', "invalid entry"),
        (f"pdq:{'cd' * 32}".encode(), None, None),  # a tombstone for another hash is fine
        (f"pdq:{'cd' * 32}".encode(), entry_record(pdq_entry(PDQ))[1], "not the entry's"),
        (b"md5:" + b"ab" * 16, entry_record(pdq_entry(PDQ))[1], "not the entry's"),
    ],
)
def test_bad_records_are_refused(
    key: bytes | None, value: bytes | None, reason: str | None
) -> None:
    if reason is None:
        assert parse_record(key, value)[1] is None
        return
    with pytest.raises(BadBankRecord, match=reason) as caught:
        parse_record(key, value)
    assert PDQ not in str(caught.value) and "not json" not in str(caught.value)


def test_invalid_entry_names_fields_not_values() -> None:
    value = json.loads(entry_record(pdq_entry(PDQ))[1])
    value["categories"] = ["secret-looking-value"]
    with pytest.raises(BadBankRecord) as caught:
        parse_record(f"pdq:{PDQ}".encode(), json.dumps(value).encode())
    assert "categories" in str(caught.value) and "secret" not in str(caught.value)
