"""``guardstream topics ensure``: create the input, output and dead-letter topics."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser("topics", help="manage the worker's Kafka topics")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ensure = actions.add_parser(
        "ensure", help="create the input, output and dead-letter topics if missing"
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
        default=30 * 24 * 3600 * 1000,
        help="retention of the dead-letter topic (default 30 days: time to triage and replay)",
    )
    add_settings_flags(ensure)
    ensure.set_defaults(handler=run_ensure)


def run_ensure(args: argparse.Namespace) -> int:
    from kafka import KafkaAdminClient

    from worker.pipeline import kafka_connection
    from worker.streaming.kafka_config import admin_kwargs
    from worker.streaming.topics import TopicSpec, ensure_topics

    settings = load_settings(args)
    admin = KafkaAdminClient(**admin_kwargs(kafka_connection(settings)))
    try:
        specs = [
            TopicSpec(settings.input_topic, args.partitions, args.replication_factor),
            TopicSpec(settings.output_topic, args.partitions, args.replication_factor),
            TopicSpec(
                settings.dlq_topic,
                args.partitions,
                args.replication_factor,
                {"retention.ms": str(args.dlq_retention_ms)},
            ),
        ]
        created = ensure_topics(admin, specs)
    finally:
        admin.close()
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name}: {state}")
    return 0
