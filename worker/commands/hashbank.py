"""``guardstream hashbank add|remove|import|export``: manage the known-bad image banks.

Entries are records on the compacted ``HASH_BANK_TOPIC`` (key ``signal:hash``, value the
HashBankEntry JSON; a tombstone removes): every worker follows the topic, so a change
takes effect fleet-wide within seconds. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings
from worker.config import Settings


class BadInput(Exception):
    """Reported as one line, exit status 2."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "hashbank",
        help="add, remove, import and export known-bad image hashes (PDQ, MD5)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="publish an entry: hash an image file, or give a hash")
    _hash_sources(add)
    add.add_argument("--bank", required=True, help="bank name, e.g. takedowns-2026")
    add.add_argument("--label", default="", help="audit trail, e.g. a case id")
    add.add_argument(
        "--categories", required=True, help="S<n> keys the bank stands for, e.g. S4,S12"
    )
    add.add_argument(
        "--allow-low-quality",
        action="store_true",
        help="--image: publish its PDQ hash even below HASH_MIN_PDQ_QUALITY (MD5 always is)",
    )

    remove = actions.add_parser("remove", help="publish tombstones: the hashes stop matching")
    _hash_sources(remove)

    imp = actions.add_parser(
        "import",
        help="publish every row of a CSV/TSV file",
        description="Columns (header row): signal, hash, and optionally bank, label, "
        "categories (S<n> separated by space , ; or |), added_at (RFC 3339). "
        "Nothing is published unless every row is valid.",
    )
    imp.add_argument("file", type=Path, help="a .csv or .tsv file ('-' = CSV on stdin)")
    imp.add_argument("--bank", help="bank of rows without one")
    imp.add_argument("--label", default="", help="label of rows without one")
    imp.add_argument("--categories", help="categories of rows without them, e.g. S4,S12")
    imp.add_argument("--delimiter", choices=("comma", "tab"), help="default: from the name")

    exp = actions.add_parser(
        "export", help="write the current bank (the topic read to its end), for backup"
    )
    exp.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")
    exp.add_argument("--format", choices=("csv", "jsonl"), help="default: from the name, else csv")
    exp.add_argument("--timeout-s", type=float, default=120.0, help="give up reading after this")

    for child in (add, remove, imp, exp):
        add_settings_flags(child)
        child.set_defaults(handler=run)


def _hash_sources(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--image", type=Path, help="an image file: its PDQ hash and MD5")
    group.add_argument("--pdq", help="a PDQ hash, 64 hex digits")
    group.add_argument("--md5", help="an MD5, 32 hex digits")


def run(args: argparse.Namespace) -> int:
    from worker.logs import configure_logging

    settings = load_settings(args)
    configure_logging(settings.log_level, settings.log_format, settings.log_content)
    try:
        if not settings.hash_bank_topic:
            raise BadInput("GUARDSTREAM_HASH_BANK_TOPIC is not set: banks are off")
        if args.action == "export":
            return _export(settings, args)
        records = _records(settings, args)
        _publish(settings, records)
    except BadInput as exc:
        print(f"guardstream hashbank: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from kafka.errors import KafkaError

        if not isinstance(exc, KafkaError):
            raise
        print(f"guardstream hashbank: Kafka: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for key, value in records:
        verb = "removed" if value is None else "published"
        print(f"{verb} {key.decode()} ({settings.hash_bank_topic})")
    return 0


def _records(settings: Settings, args: argparse.Namespace) -> list[tuple[bytes, bytes | None]]:
    from worker.hashbank import entry_record, tombstone_key

    if args.action == "import":
        return [entry_record(entry) for entry in _read_import(args)]
    hashes = _hashes_of(args, settings)
    if args.action == "remove":
        return [(tombstone_key(signal, value), None) for signal, value in hashes]
    now = datetime.now(UTC)
    entries = [
        _validated(
            {
                "signal": signal,
                "hash": value,
                "bank": args.bank,
                "label": args.label,
                "categories": _categories(args.categories),
                "added_at": now,
            }
        )
        for signal, value in hashes
    ]
    return [entry_record(entry) for entry in entries]


def _hashes_of(args: argparse.Namespace, settings: Settings) -> list[tuple[str, str]]:
    """(signal, hash) pairs named by --pdq, --md5 or --image."""
    from schemas.hashbank import check_hash

    if args.image is None:
        signal, value = ("pdq", args.pdq) if args.pdq is not None else ("md5", args.md5)
        try:
            return [(signal, check_hash(signal, value.strip().lower()))]
        except ValueError as exc:
            raise BadInput(f"--{signal}: {exc}") from None
    hashes = _hash_file(args.image)
    pairs = [("md5", hashes.md5)]
    if args.action == "remove" or hashes.pdq_quality >= settings.hash_min_pdq_quality:
        return [("pdq", hashes.pdq), *pairs]
    if getattr(args, "allow_low_quality", False):
        return [("pdq", hashes.pdq), *pairs]
    print(
        f"guardstream hashbank: {args.image}: PDQ quality {hashes.pdq_quality} < "
        f"{settings.hash_min_pdq_quality} (a featureless image): publishing its MD5 only "
        "(--allow-low-quality publishes the PDQ hash too)",
        file=sys.stderr,
    )
    return pairs


def _hash_file(path: Path) -> Any:
    # The worker's own decoding (alpha over white, 16-bit narrowing): the same pixels,
    # so the same PDQ hash as when the image arrives in a conversation.
    from worker.hashbank import hash_image
    from worker.images.decode import ImageLimits, decode_image
    from worker.images.exceptions import ImageError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror or exc}") from None
    try:
        image = decode_image(data, ImageLimits())
    except ImageError as exc:
        raise BadInput(f"{path}: {exc}") from None
    return hash_image(image, data)


def _categories(text: str | None) -> list[str]:
    from worker.hashbank.files import split_categories

    return split_categories(text or "")


def _validated(data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from schemas.hashbank import HashBankEntry

    try:
        return HashBankEntry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "entry"
        raise BadInput(f"--{field.split('.')[0]}: {first['msg']}") from None


def _read_import(args: argparse.Namespace) -> list[Any]:
    from worker.hashbank.files import BankFileError, EntryDefaults, read_entries

    name = str(args.file)
    tab = args.delimiter == "tab" or (args.delimiter is None and name.lower().endswith(".tsv"))
    defaults = EntryDefaults(
        added_at=datetime.now(UTC),
        bank=args.bank,
        label=args.label,
        categories=tuple(_categories(args.categories)),
    )
    try:
        if name == "-":
            entries = read_entries(sys.stdin, defaults, delimiter="\t" if tab else ",")
        else:
            with args.file.open(encoding="utf-8", newline="") as handle:
                entries = read_entries(handle, defaults, delimiter="\t" if tab else ",")
    except OSError as exc:
        raise BadInput(f"{name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{name}: not UTF-8 text") from None
    except BankFileError as exc:
        raise BadInput(f"{name} {exc}") from None
    if not entries:
        raise BadInput(f"{name}: no rows")
    return entries


def _publish(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    from kafka import KafkaProducer

    from worker.clients import kafka_connection
    from worker.streaming.kafka_config import producer_kwargs

    producer = KafkaProducer(**producer_kwargs(kafka_connection(settings)))
    try:
        futures = [
            producer.send(settings.hash_bank_topic, key=key, value=value) for key, value in records
        ]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)  # raises the send's error, if any
    finally:
        producer.close()


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from worker.clients import kafka_connection
    from worker.hashbank import BankFollower, HashBank, build_bank_consumer
    from worker.hashbank.files import ExportFormat, write_entries

    name = str(args.output or "")
    fmt: ExportFormat = args.format or ("jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv")
    bank = HashBank(settings.hash_match_distance)
    follower = BankFollower(
        build_bank_consumer(kafka_connection(settings)), bank, str(settings.hash_bank_topic)
    )
    follower.start()
    try:
        if not follower.wait_caught_up(args.timeout_s):
            raise BadInput(
                f"could not read {settings.hash_bank_topic} to its end in {args.timeout_s:g} s"
            )
    finally:
        follower.stop()
    entries = bank.entries()
    if args.output is None:
        write_entries(entries, sys.stdout, fmt)
    else:
        try:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                write_entries(entries, out, fmt)
        except OSError as exc:
            raise BadInput(f"{args.output}: {exc.strerror or exc}") from None
    print(
        f"exported {len(entries)} entries ({follower.bad_records} bad records skipped) "
        f"from {settings.hash_bank_topic}",
        file=sys.stderr,
    )
    return 0
