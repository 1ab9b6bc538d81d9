"""``guardstream replay``: re-drive dead letters to the input topic."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay",
        help="re-drive dead letters to the input topic",
        description="Copies dead letters (key and value byte for byte) back to the input topic, "
        "stripping the guardstream.* headers and counting replays in guardstream.replay.count. "
        "Records replayed --max-replays times already are refused and stay in the DLQ.",
    )
    parser.add_argument("--from", dest="from_topic", help="dead-letter topic (default: DLQ_TOPIC)")
    parser.add_argument("--to", dest="to_topic", help="target topic (default: INPUT_TOPIC)")
    parser.add_argument(
        "--stage",
        choices=("decode", "validate", "fetch", "classify", "publish"),
        help="only this stage",
    )
    parser.add_argument("--limit", type=int, help="replay at most this many records")
    parser.add_argument(
        "--max-replays", type=int, default=3, help="refuse records replayed this often"
    )
    parser.add_argument(
        "--replay-group",
        help="consumer group that remembers how far replays got (default: "
        "'<GROUP_ID>.replay[.<stage>]'; 'none' rescans the whole topic)",
    )
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.clients import kafka_connection
    from worker.logs import configure_logging
    from worker.startup_errors import check_kafka, kafka_errors, require_driver
    from worker.streaming.replay import replay_dead_letters

    settings = load_settings(args)
    configure_logging(settings.log_level, settings.log_format, settings.log_content)
    driver = require_driver(settings)
    conn = kafka_connection(settings)
    from_topic = args.from_topic or settings.dlq_topic
    to_topic = args.to_topic or settings.input_topic
    check_kafka(settings, conn, (from_topic, to_topic))

    group = args.replay_group or f"{settings.group_id}.replay" + (
        f".{args.stage}" if args.stage else ""
    )

    def consumer_factory() -> Any:
        # Assigned, not subscribed: the group only stores how far replays got.
        return driver.consumer(conn, group_id=None if group == "none" else group)

    with kafka_errors(settings):
        producer = driver.producer(conn)
        try:
            print(f"replaying {from_topic} -> {to_topic} ...", file=sys.stderr, flush=True)
            result = replay_dead_letters(
                consumer_factory,
                producer,
                from_topic,
                to_topic,
                stage=args.stage,
                limit=args.limit,
                max_replays=args.max_replays,
            )
        finally:
            producer.close()
    print(
        f"scanned={result.scanned} replayed={result.replayed} refused={result.refused} "
        f"skipped={result.skipped}"
    )
    return 0
