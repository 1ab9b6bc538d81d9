"""The start-up failures a new user meets first: one line on stderr that names what to
check, a non-zero exit code, no traceback. ``guardstream`` runs as a subprocess (the
tree's code, via PYTHONPATH), as a user would run it."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import Settings
from worker.startup_errors import kafka_error_line, metrics_port_error

ROOT = Path(__file__).resolve().parents[1]


def guardstream(
    *args: str, timeout_s: float = 180, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSTREAM_")}
    env.update(PYTHONPATH=str(ROOT), GUARDSTREAM_LOG_FORMAT="json")
    env.update({f"GUARDSTREAM_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env=env,
    )


def message_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines: what a user reads as the error."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = message_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert done.returncode == code, done.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def test_broker_unreachable_at_start(tmp_path: Path) -> None:
    # Fails before the model would be loaded: an empty directory stands in for it.
    done = guardstream(
        "run",
        "--model",
        str(tmp_path),
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_startup_timeout_s="2",
        metrics_port="0",
    )
    line = assert_one_line(
        done, 1, "127.0.0.1:1", "connection refused", "GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS"
    )
    assert line.startswith("guardstream: cannot reach any Kafka bootstrap server within 2 s")


def test_metrics_port_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:  # another worker on this host holds the port
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = guardstream("run", "--model", str(tmp_path), metrics_port=str(port))
    assert_one_line(done, 2, f"metrics port {port}", "GUARDSTREAM_METRICS_PORT", "or 0")


def test_model_path_that_does_not_exist() -> None:
    done = guardstream("run", "--model", "/nonexistent", metrics_port="0")
    line = assert_one_line(done, 1)
    assert (
        line
        == "guardstream: cannot load the model: /nonexistent: no such directory, and not a hub id"
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [(errno.EADDRINUSE, "already in use"), (errno.EACCES, "needs privileges")],
)
def test_metrics_port_errors_name_the_setting(code: int, expected: str) -> None:
    error = metrics_port_error(OSError(code, os.strerror(code)), 9108)
    assert error.exit_code == 2
    assert expected in str(error) and "GUARDSTREAM_METRICS_PORT" in str(error)


def test_kafka_errors_become_lines_without_secrets() -> None:
    import kafka.errors as errors

    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="hunter2-secret",
        group_id="g1",
    )
    cases = [
        (errors.SaslAuthenticationFailedError("bad"), "GUARDSTREAM_KAFKA_SASL_PASSWORD"),
        (errors.KafkaTimeoutError("Unable to bootstrap from x"), "GUARDSTREAM_KAFKA_BOOTSTRAP"),
        (errors.GroupAuthorizationFailedError("g1"), "READ on the group"),
        (errors.TopicAuthorizationFailedError("t"), "READ on the input topic"),
        (errors.TransactionalIdAuthorizationFailedError(), "WRITE and DESCRIBE"),
        (errors.ClusterAuthorizationFailedError(), "IDEMPOTENT_WRITE"),
    ]
    for exc, expected in cases:
        line = kafka_error_line(exc, settings)
        assert line is not None and expected in line, (exc, line)
        assert "hunter2" not in line
    assert kafka_error_line(ValueError("x"), settings) is None
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = errors.TopicAuthorizationFailedError("out")
    assert "WRITE" in (kafka_error_line(wrapped, settings) or "")
