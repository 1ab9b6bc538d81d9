"""``guardstream run``: the worker."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import structlog

from worker.commands.settings_flags import add_settings_flags, load_settings

log = structlog.get_logger(__name__)


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

    from worker.clients import connect, kafka_connection
    from worker.health import HealthServer, HealthState
    from worker.logs import configure_logging
    from worker.metrics import Metrics
    from worker.pipeline import Worker, load_models
    from worker.policy import PolicyFileError, PolicyStore
    from worker.startup_errors import StartupError, check_kafka, kafka_errors, metrics_port_error

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
    health = HealthState(broker_timeout_s=settings.ready_broker_timeout_s)
    server = None
    if settings.metrics_port:
        try:
            server = HealthServer(settings.metrics_port, health, metrics.registry)
        except OSError as exc:
            raise metrics_port_error(exc, settings.metrics_port) from None
        server.start()
    from worker.streaming.drivers import DriverUnavailable, load_driver

    try:
        load_driver(settings.kafka_driver)  # before the model: a missing library is quick to tell
    except DriverUnavailable as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    try:
        # Cheap checks first: loading the model may take minutes, and a mistyped path or
        # broker setting would otherwise only show after them.
        _check_model_references(settings)
        topics = (
            settings.input_topic,
            settings.output_topic,
            settings.dlq_topic,
            settings.review_topic,
        )
        found = check_kafka(settings, kafka_connection(settings), topics)
        for topic in found.unknown_topics:
            log.warning("topic does not exist yet", topic=topic, hint="guardstream topics ensure")
        if settings.log_format == "json" or (
            settings.log_format == "auto" and not sys.stderr.isatty()
        ):
            _no_progress_bars()  # JSON logs stay JSON lines (no tqdm bars while loading)
        try:
            models = load_models(settings)
        except Exception as exc:
            raise StartupError(f"cannot load the model: {exc}") from None
        with kafka_errors(settings):
            worker = Worker(
                settings, models, connect(settings), metrics=metrics, health=health, policy=policy
            )
            worker.run()
    finally:
        if server is not None:
            server.stop()
    return 0


def _check_model_references(settings: Any) -> None:
    from worker.engine.loading import check_model_reference
    from worker.startup_errors import StartupError

    for model in (settings.model, settings.text_model):
        if model is None:
            continue
        try:
            check_model_reference(model)
        except Exception as exc:
            raise StartupError(f"cannot load the model: {exc}") from None


def _no_progress_bars() -> None:
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    disable_progress_bars()
    transformers_logging.disable_progress_bar()
