"""``guardstream run``: the worker."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="consume conversations, classify them, publish verdicts (the worker)",
        description="Runs until SIGTERM/SIGINT, then drains in-flight work, commits and exits 0.",
    )
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import faulthandler

    from worker.clients import connect
    from worker.health import HealthServer, HealthState
    from worker.logs import configure_logging
    from worker.metrics import Metrics
    from worker.pipeline import Worker, load_models
    from worker.policy import PolicyFileError, PolicyStore

    # A fatal signal (SIGSEGV, SIGABRT from native code) prints every thread's stack,
    # on the process's real stderr (sys.stderr may be a stream without a descriptor).
    if sys.__stderr__ is not None:
        faulthandler.enable(file=sys.__stderr__)
    settings = load_settings(args)
    configure_logging(settings.log_level, settings.log_format, settings.log_content)
    metrics = Metrics()
    try:
        policy = PolicyStore(
            settings.policy_file, unsafe_threshold=settings.unsafe_threshold, metrics=metrics
        )
    except PolicyFileError as exc:
        print(f"guardstream: bad policy file {exc}", file=sys.stderr)
        return 2
    health = HealthState()
    server = None
    if settings.metrics_port:
        server = HealthServer(settings.metrics_port, health, metrics.registry)
        server.start()
    from worker.streaming.drivers import DriverUnavailable, load_driver

    try:
        load_driver(settings.kafka_driver)  # before the model: a missing library is quick to tell
    except DriverUnavailable as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            models = load_models(settings)
        except Exception as exc:
            print(f"guardstream: cannot load the model: {exc}", file=sys.stderr)
            return 1
        worker = Worker(
            settings, models, connect(settings), metrics=metrics, health=health, policy=policy
        )
        worker.run()
    finally:
        if server is not None:
            server.stop()
    return 0
