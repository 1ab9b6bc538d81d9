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


def test_json_lines_are_json_whatever_the_fields_hold(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    log = structlog.get_logger("test")
    configure_logging("INFO", "json")
    log.info("plain", event_id="e1", score=0.25, categories=["S1"], text="naïve")
    log.info("odd", raw=b"\xff\xfe", thing=object())  # not UTF-8; no JSON type
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    plain, odd = lines
    assert plain["event"] == "plain" and plain["level"] == "info"
    assert (plain["event_id"], plain["score"], plain["categories"], plain["text"]) == (
        "e1",
        0.25,
        ["S1"],
        "naïve",
    )
    assert "timestamp" in plain
    assert odd["event"] == "odd"
    assert odd["raw"] == repr(b"\xff\xfe") and odd["thing"].startswith("<object object")
