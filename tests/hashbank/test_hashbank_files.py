"""CSV/TSV import and CSV/JSONL export of bank entries."""

from __future__ import annotations

import io
import json

import pytest
from hashbank_helpers import ADDED_AT, md5_entry, pdq_entry

from worker.hashbank.files import BankFileError, EntryDefaults, read_entries, write_entries

PDQ = "ab" * 32
MD5 = "cd" * 16
DEFAULTS = EntryDefaults(added_at=ADDED_AT, bank="default-bank", categories=("S4",))


def test_csv_with_every_column_and_defaults() -> None:
    text = (
        "signal,hash,bank,label,categories,added_at\n"
        f"pdq,{PDQ.upper()},takedowns,case 1,S12 S4,2026-01-02T03:04:05+00:00\n"
        f"md5,{MD5},,,,\n"
    )
    first, second = read_entries(io.StringIO(text), DEFAULTS)
    assert (first.hash, first.bank, first.label, first.categories) == (
        PDQ,
        "takedowns",
        "case 1",
        ["S4", "S12"],
    )
    assert first.added_at.year == 2026 and first.added_at.month == 1
    assert (second.bank, second.categories, second.added_at) == ("default-bank", ["S4"], ADDED_AT)


def test_tsv_minimal_columns_and_duplicates_keep_the_last_row() -> None:
    text = f"hash\tsignal\tlabel\n{PDQ}\tpdq\told\n{PDQ}\tpdq\tnew\n"
    (entry,) = read_entries(io.StringIO(text), DEFAULTS, delimiter="\t")
    assert entry.label == "new" and entry.signal == "pdq"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hash\nab\n", "line 1: the header lacks signal"),
        ("signal,hash,colour\n", "unknown column 'colour'"),
        (f"signal,hash\npdq,{PDQ[:-2]}\n", "line 2: hash"),
        (f"signal,hash\nsha1,{PDQ}\n", "line 2: signal"),
        (f"signal,hash,categories\npdq,{PDQ},violence\n", "line 2: categories"),
        (f"signal,hash\npdq,{PDQ},extra\n", "line 2: more fields"),
        (f"signal,hash,added_at\npdq,{PDQ},yesterday\n", "line 2: added_at"),
    ],
)
def test_bad_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BankFileError, match=message) as caught:
        read_entries(io.StringIO(text), DEFAULTS)
    assert "violence" not in str(caught.value) and "yesterday" not in str(caught.value)


def test_a_row_without_bank_needs_a_default() -> None:
    with pytest.raises(BankFileError, match="no bank"):
        read_entries(io.StringIO(f"signal,hash\npdq,{PDQ}\n"), EntryDefaults(added_at=ADDED_AT))


def test_export_formats_and_csv_round_trip() -> None:
    entries = [pdq_entry(PDQ, label='quoted, "label"'), md5_entry(MD5)]
    out = io.StringIO()
    write_entries(entries, out, "csv")
    assert sorted(read_entries(io.StringIO(out.getvalue()), DEFAULTS), key=str) == sorted(
        entries, key=str
    )
    out = io.StringIO()
    write_entries(entries, out, "jsonl")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {line["hash"] for line in lines} == {PDQ, MD5}
