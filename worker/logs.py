"""structlog setup: JSON lines in production, readable console output on a TTY.

Message text, image bytes and credentials never go into logs; ``log_content``
(``GUARDSTREAM_LOG_CONTENT=true``) is the one explicit switch that allows text,
and code that logs content checks :func:`content_allowed` first.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_content_allowed = False


def content_allowed() -> bool:
    return _content_allowed


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
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
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
    # Libraries log through stdlib logging: keep them quiet but visible on errors.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for noisy in ("kafka", "botocore", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
