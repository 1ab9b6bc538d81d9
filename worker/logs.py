"""structlog setup: JSON lines in production, readable console output on a TTY.

Message text, image bytes and credentials never go into logs; ``log_content``
(``GUARDSTREAM_LOG_CONTENT=true``) is the one explicit switch that allows text,
and code that logs content checks :func:`content_allowed` first.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any, Literal

import pydantic_core
import structlog

_content_allowed = False


def content_allowed() -> bool:
    return _content_allowed


# (wrapper class, level) -> enabled. structlog builds one filtering class per level
# and keeps it, so this stays as small as the set of levels ever configured.
_enabled: dict[tuple[Any, int], bool] = {}


def enabled_for(logger: Any, level: int) -> bool:
    """Whether ``logger`` (from ``structlog.get_logger``) emits ``level`` under the
    current configuration: per-event call sites check it so that a filtered line
    costs neither its fields nor a bind. A wrapper without a level filter emits all.
    """
    wrapper = structlog.get_config()["wrapper_class"]
    enabled = _enabled.get((wrapper, level))
    if enabled is None:
        check = getattr(logger.bind(), "is_enabled_for", None)
        enabled = True if check is None else bool(check(level))
        _enabled[(wrapper, level)] = enabled
    return enabled


class PerEventLogger:
    """A logger for a per-event call site, bound once per logging configuration and
    ``sys.stderr`` rather than once per line.

    A module's ``structlog.get_logger()`` proxy builds a new bound logger, and its
    ``PrintLogger``, on every call (``cache_logger_on_first_use`` is off so that a new
    configuration or a replaced stderr takes effect): ~4 of the ~17 µs a verdict line
    costs (``bench steps --log-level INFO``). This keeps the bound logger until either
    changes; the lines are the same.
    """

    __slots__ = ("_cached", "_proxy")

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy
        self._cached: tuple[Any, Any, Any, Any, Any] = (None, None, None, None, None)

    def get(self) -> Any:
        # configure() keeps the objects it is given, and configure_logging() builds new
        # ones; stderr is replaced per test. One tuple, swapped whole: workers in threads
        # of one process may share this.
        config = structlog.get_config()
        processors, wrapper, factory, stderr, bound = self._cached
        if (
            processors is not config["processors"]
            or wrapper is not config["wrapper_class"]
            or factory is not config["logger_factory"]
            or stderr is not sys.stderr
        ):
            bound = self._proxy.bind()
            self._cached = (
                config["processors"],
                config["wrapper_class"],
                config["logger_factory"],
                sys.stderr,
                bound,
            )
        return bound


def render_json(event_dict: Any, default: Callable[[Any], Any] | None = None, **_: Any) -> str:
    """A log line's JSON, compact, for ``structlog.processors.JSONRenderer``.

    pydantic-core writes it in ~1 µs where ``json.dumps`` takes ~5, on a line written
    per verdict. ``default`` (structlog's fallback: ``__structlog__()`` or ``repr``)
    renders what neither knows. A line with non-ASCII text goes through ``json.dumps``
    instead, so that every line stays ASCII (escaped) as the stdlib's always was: log
    pipelines with another encoding read the same text.
    """
    line = pydantic_core.to_json(event_dict, fallback=default).decode()
    if line.isascii():
        return line
    return json.dumps(event_dict, default=default, separators=(",", ":"))


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
    log_content: bool = False,
) -> None:
    global _content_allowed
    _content_allowed = log_content
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=render_json)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Resolve sys.stderr per logger, not once: it may be replaced (tests, daemons).
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging: keep them quiet but visible on errors, and
    # in the same format (a JSON log stays JSON lines, also for kafka-python's errors).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
            ],
        )
    )
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for noisy in ("kafka", "botocore", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def logged_events(text: str) -> list[str]:
    """The ``event`` of every JSON log line in ``text`` (a worker's stderr), in order;
    other lines (console output, a traceback) are skipped. For tests and tools that ask
    what a worker logged without depending on how the JSON is spaced."""
    events = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("event"), str):
            events.append(entry["event"])
    return events
