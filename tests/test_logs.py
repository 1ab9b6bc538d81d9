"""worker.logs: the level check that per-event log lines use."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from worker.logs import configure_logging, enabled_for


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_enabled_for_follows_the_configured_level() -> None:
    log = structlog.get_logger("test")
    configure_logging("WARNING", "json")
    assert not enabled_for(log, logging.INFO)
    assert enabled_for(log, logging.WARNING)
    configure_logging("INFO", "json")
    assert enabled_for(log, logging.INFO)
    assert not enabled_for(log, logging.DEBUG)


def test_lines_it_lets_through_reach_capture_logs() -> None:
    log = structlog.get_logger("test")
    configure_logging("INFO", "json")
    with capture_logs() as logs:
        if enabled_for(log, logging.INFO):
            log.info("seen")
    assert [entry["event"] for entry in logs] == ["seen"]
