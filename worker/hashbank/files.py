"""Bank entries in files: CSV/TSV to import, CSV or JSON lines to export (pure).

CSV/TSV columns (a header row names them, in any order):

    signal      pdq or md5                                   required
    hash        64 (pdq) or 32 (md5) hex digits              required
    bank        bank name, e.g. takedowns-2026               else --bank
    label       free text for the audit trail (<= 256 chars)  else --label, else empty
    categories  S<n> keys separated by space, comma, ; or |  else --categories
    added_at    RFC 3339 with an offset                      else the time of the import

``export`` writes the same columns (categories space separated), so an export imports.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TextIO

from pydantic import ValidationError

from schemas.hashbank import HashBankEntry
from worker.hashbank.exceptions import HashBankError

COLUMNS = ("signal", "hash", "bank", "label", "categories", "added_at")
_REQUIRED = ("signal", "hash")
_CATEGORY_SEPARATORS = re.compile(r"[\s,;|]+")
ExportFormat = Literal["csv", "jsonl"]


class BankFileError(HashBankError):
    """A file that cannot be imported: says which line and why (never the line itself)."""


@dataclass(frozen=True)
class EntryDefaults:
    """Values for columns a file leaves out (or leaves empty)."""

    added_at: datetime
    bank: str | None = None
    label: str = ""
    categories: tuple[str, ...] = ()


def split_categories(text: str) -> list[str]:
    return [part for part in _CATEGORY_SEPARATORS.split(text.strip()) if part]


def read_entries(
    lines: Iterable[str], defaults: EntryDefaults, *, delimiter: str = ","
) -> list[HashBankEntry]:
    """Every row as a validated entry; BankFileError at the first bad one. A hash that
    appears twice keeps its last row (as the compacted topic would)."""
    reader = csv.DictReader(lines, delimiter=delimiter, strict=True)
    try:
        header = [name.strip().lower() for name in reader.fieldnames or ()]
    except csv.Error as exc:
        raise BankFileError(f"line 1: {exc}") from None
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise BankFileError(
            f"line 1: the header lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})"
        )
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise BankFileError(
            f"line 1: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})"
        )
    reader.fieldnames = header
    entries: dict[str, HashBankEntry] = {}
    try:
        for row in reader:
            entry = _entry(row, defaults, reader.line_num)
            entries.pop(entry.key, None)
            entries[entry.key] = entry
    except csv.Error as exc:
        raise BankFileError(f"line {reader.line_num}: {exc}") from None
    return list(entries.values())


def _entry(row: dict[str, str | None], defaults: EntryDefaults, line: int) -> HashBankEntry:
    if None in row:  # csv puts surplus fields under the key None
        raise BankFileError(f"line {line}: more fields than the header has columns")
    values = {k: (v or "").strip() for k, v in row.items()}
    data: dict[str, object] = {
        "signal": values.get("signal", "").lower(),
        "hash": values.get("hash", ""),
        "bank": values.get("bank") or defaults.bank,
        "label": values["label"] if values.get("label") else defaults.label,
        "categories": split_categories(values.get("categories", "")) or list(defaults.categories),
        "added_at": values.get("added_at") or defaults.added_at,
    }
    if data["bank"] is None:
        raise BankFileError(f"line {line}: no bank (add a bank column or pass --bank)")
    try:
        return HashBankEntry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "entry"
        raise BankFileError(f"line {line}: {field}: {first['msg']}") from None


def write_entries(entries: Sequence[HashBankEntry], out: TextIO, fmt: ExportFormat) -> None:
    ordered = sorted(entries, key=lambda e: (e.bank, e.signal, e.hash))
    if fmt == "jsonl":
        for entry in ordered:
            out.write(json.dumps(entry.model_dump(mode="json"), sort_keys=True) + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in ordered:
        writer.writerow(
            [
                entry.signal,
                entry.hash,
                entry.bank,
                entry.label,
                " ".join(entry.categories),
                entry.added_at.isoformat(),
            ]
        )
