"""The Quix Streams peer of ``bench overhead``: a minimal application doing guardstream's
per-event work without a model, run in its own virtual environment.

Per event: ``peer_work.peer_moderate`` (validate the v1 ConversationEvent with pydantic,
build a VerdictEvent with a fixed safe answer, dump its JSON), then produce it; Quix commits at-least-once every second (the
worker's COMMIT_INTERVAL_MS). Timed from the first record consumed to the moment the
app has produced ``--events`` outputs, flushed and committed (``Application.run(count=)``
returns after its close).

Not imported by the worker: quixstreams pins pydantic and confluent-kafka to versions
other than guardstream's, so it lives in its own environment (``worker.bench.quix_env``)
and ``bench overhead --peer quix`` runs this file with that environment's Python, with the
repository root on ``sys.path`` for ``schemas`` (which depends on pydantic only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import quixstreams  # type: ignore[import-not-found]

    from worker.bench.peer_work import peer_moderate

    first: list[float] = []
    work = peer_moderate(args.input)

    def moderate(value: bytes, key: Any, timestamp: int, headers: Any) -> bytes:
        if not first:
            first.append(time.monotonic())
        return work(value)

    app = quixstreams.Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        processing_guarantee="at-least-once",
        use_changelog_topics=False,
        auto_create_topics=False,
    )
    source = app.topic(args.input, value_deserializer="bytes", key_deserializer="bytes")
    sink = app.topic(args.output, value_serializer="bytes", key_serializer="bytes")
    sdf = app.dataframe(source)
    sdf = sdf.apply(moderate, metadata=True)
    sdf.to_topic(sink)
    app.run(count=args.events, timeout=120.0, collect=False)
    finished = time.monotonic()
    seconds = finished - first[0] if first else 0.0
    print(
        json.dumps(
            {"seconds": seconds, "events": args.events, "quixstreams": quixstreams.__version__}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
