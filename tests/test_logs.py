"""worker.logs: the level check and the bound logger that per-event log lines use."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from worker.logs import PerEventLogger, configure_logging, enabled_for


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


def test_per_event_logger_writes_the_proxys_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = structlog.get_logger("test")
    per_event = PerEventLogger(proxy)
    configure_logging("INFO", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    proxy.info("verdict", event_id="e1", offset=3)
    per_event.get().info("verdict", event_id="e1", offset=3)
    plain, cached = (json.loads(line) for line in stream.getvalue().splitlines())
    assert plain.pop("timestamp") and cached.pop("timestamp")
    assert plain == cached == {"event": "verdict", "event_id": "e1", "offset": 3, "level": "info"}
    assert per_event.get() is per_event.get()  # bound once, not per line


def test_per_event_logger_follows_a_new_stderr_and_a_new_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per_event = PerEventLogger(structlog.get_logger("test"))
    configure_logging("INFO", "json")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    per_event.get().info("one")
    monkeypatch.setattr(sys, "stderr", second)  # as pytest's capture does per test
    per_event.get().info("two")
    configure_logging("WARNING", "json")
    per_event.get().info("filtered")
    per_event.get().warning("three")
    with capture_logs() as logs:  # structlog's own test helper reconfigures too
        per_event.get().warning("captured")
    assert [json.loads(line)["event"] for line in first.getvalue().splitlines()] == ["one"]
    assert [json.loads(line)["event"] for line in second.getvalue().splitlines()] == [
        "two",
        "three",
    ]
    assert [entry["event"] for entry in logs] == ["captured"]


def test_json_lines_hold_what_the_stdlib_renderer_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("INFO", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    fields = {
        "event_id": "e1",
        "offset": 3,
        "unsafe_score": 0.0123,
        "categories": ["S1", "S10"],
        "nested": {"a": [1, 2.5, None, True]},
        "client": Opaque(),  # neither serializer knows it: structlog's fallback, repr()
    }
    log = structlog.get_logger("test")
    log.info("verdict", **fields)
    log.warning("dead letter", error="naïve ☃ input")  # non-ASCII: escaped, as before
    fast, escaped = stream.getvalue().splitlines()
    expected = {**fields, "client": "<opaque>", "event": "verdict", "level": "info"}
    line = json.loads(fast)
    assert line.pop("timestamp")
    assert line == expected
    assert ": " not in fast  # compact: pydantic-core wrote it
    assert escaped.isascii() and "\\u00ef" in escaped and "\\u2603" in escaped
    assert json.loads(escaped)["error"] == "naïve ☃ input"


def test_render_json_is_ascii_and_the_same_data_as_json_dumps() -> None:
    from worker.logs import render_json

    for event in (
        {"event": "x", "n": 1, "f": 1e-05, "s": 'tab\tquote"back\\slash'},
        {"event": "ünïcode", "emoji": "🙂", "zero_width": "a\u200bb"},
        {"event": "ctrl", "s": "\x00\x1f\x7f"},
    ):
        line = render_json(event)
        assert line.isascii(), line
        assert json.loads(line) == json.loads(json.dumps(event))


def test_logged_events_reads_the_event_of_each_json_line() -> None:
    from worker.logs import logged_events

    text = "\n".join(
        [
            '{"event":"worker starting","level":"info"}',
            '{"event": "dead letter", "stage": "decode"}',  # the stdlib's spacing too
            "Traceback (most recent call last):",
            "{not json",
            '{"level":"info"}',
            '["event"]',
        ]
    )
    assert logged_events(text) == ["worker starting", "dead letter"]
