"""``guardstream acls``: the ``kafka-acls`` lines that grant a worker what it needs."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "acls",
        help="print the kafka-acls lines that grant the worker its least privileges",
        description="Least privilege for `guardstream run` with these settings: READ on the "
        "input topic and the group, WRITE on the output, dead-letter and review topics, and with "
        "EXACTLY_ONCE WRITE on the transactional id.",
    )
    parser.add_argument("--principal", default="User:guardstream", help="e.g. User:guardstream")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="exactly-once: one prefixed ACL for every worker's transactional id '<GROUP_ID>-*'",
    )
    parser.add_argument("--bootstrap", default="BROKER:9092", help="kafka-acls --bootstrap-server")
    parser.add_argument(
        "--command-config", default="admin.properties", help="kafka-acls --command-config"
    )
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.streaming.acls import kafka_acls_lines, worker_acls

    settings = load_settings(args)
    transactional_id = None
    if settings.exactly_once:
        transactional_id = (
            f"{settings.group_id}-" if args.fleet else settings.effective_transactional_id
        )
    specs = worker_acls(
        args.principal,
        input_topic=settings.input_topic,
        output_topics=[settings.output_topic, settings.dlq_topic, settings.review_topic],
        group_id=settings.group_id,
        transactional_id=transactional_id,
        prefixed_transactional_id=args.fleet,
    )
    for line in kafka_acls_lines(
        specs, bootstrap=args.bootstrap, command_config=args.command_config
    ):
        print(line)
    return 0
