"""``guardstream topics ensure``: create the input, output, review and dead-letter topics,
and the compacted hash bank topic."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings
from worker.config import Settings

# Thirty days: time to triage and replay dead letters.
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000
# The bank topic keeps the latest record per key forever (a tombstone removes the key).
HASH_BANK_CONFIGS = {"cleanup.policy": "compact"}


def register(sub: Any) -> None:
    parser = sub.add_parser("topics", help="manage the worker's Kafka topics")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ensure = actions.add_parser(
        "ensure", help="create the input, output, review and dead-letter topics if missing"
    )
    ensure.add_argument(
        "--partitions", type=int, default=6, help="partitions of each new topic (default 6)"
    )
    ensure.add_argument(
        "--replication-factor", type=int, default=1, help="replicas of each new topic"
    )
    ensure.add_argument(
        "--dlq-retention-ms",
        type=int,
        default=DLQ_RETENTION_MS,
        help="retention of the dead-letter topic (default 30 days: time to triage and replay)",
    )
    ensure.add_argument(
        "--hash-bank-partitions",
        type=int,
        default=1,
        help="partitions of a new hash bank topic (default 1: every worker reads all of it)",
    )
    add_settings_flags(ensure)
    ensure.set_defaults(handler=run_ensure)


def ensure_worker_topics(
    settings: Settings,
    *,
    partitions: int,
    replication_factor: int,
    dlq_retention_ms: int = DLQ_RETENTION_MS,
    hash_bank_partitions: int = 1,
) -> list[str]:
    """Create the worker's topics that are missing (input, output, review, dead letters,
    the hash bank) with the ``KAFKA_DRIVER``'s admin; return those created.
    ``DriverUnavailable`` when the driver's library is missing."""
    from worker.clients import kafka_connection
    from worker.streaming.drivers import load_driver
    from worker.streaming.topics import TopicSpec, ensure_topics

    specs = [
        TopicSpec(settings.input_topic, partitions, replication_factor),
        TopicSpec(settings.output_topic, partitions, replication_factor),
        TopicSpec(settings.review_topic, partitions, replication_factor),
        TopicSpec(
            settings.dlq_topic,
            partitions,
            replication_factor,
            {"retention.ms": str(dlq_retention_ms)},
        ),
    ]
    if settings.hash_bank_topic:
        specs.append(
            TopicSpec(
                settings.hash_bank_topic,
                hash_bank_partitions,
                replication_factor,
                HASH_BANK_CONFIGS,
            )
        )
    admin = load_driver(settings.kafka_driver).admin(kafka_connection(settings))
    try:
        return ensure_topics(admin, specs)
    finally:
        admin.close()


def run_ensure(args: argparse.Namespace) -> int:
    from worker.clients import kafka_connection
    from worker.startup_errors import check_kafka, kafka_errors, require_driver

    settings = load_settings(args)
    require_driver(settings)
    check_kafka(settings, kafka_connection(settings))
    with kafka_errors(settings):
        created = ensure_worker_topics(
            settings,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            dlq_retention_ms=args.dlq_retention_ms,
            hash_bank_partitions=args.hash_bank_partitions,
        )
    names = [settings.input_topic, settings.output_topic, settings.review_topic]
    names += [settings.dlq_topic]
    names += [settings.hash_bank_topic] if settings.hash_bank_topic else []
    for name in names:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0
