"""Errors a user meets first, as one line that names the setting to check.

A command raises ``StartupError``; ``worker.cli`` prints ``guardstream: <message>`` on
stderr and exits with its code, without a traceback. This module turns the broker
check's findings (``worker.streaming.preflight``) and kafka-python's exceptions into
those lines. Never put a secret in a message: the SASL password and key passwords are
only ever named by their setting.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from worker.config import Settings

if TYPE_CHECKING:  # kept out of `guardstream --help`'s imports
    from worker.streaming.drivers import KafkaDriver
    from worker.streaming.preflight import BrokerCheck, BrokerCheckFailed


class StartupError(Exception):
    """Reported as ``guardstream: <message>``; the process exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def require_driver(settings: Settings) -> KafkaDriver:
    """The ``KAFKA_DRIVER``; exit 2 with the install line when its library is missing."""
    from worker.streaming.drivers import DriverUnavailable, load_driver

    try:
        return load_driver(settings.kafka_driver)
    except DriverUnavailable as exc:
        raise StartupError(str(exc), exit_code=2) from None


def check_kafka(settings: Settings, conn: Any, topics: Sequence[str] = ()) -> BrokerCheck:
    """The broker check for ``conn`` (built from ``settings``), as a ``StartupError``."""
    from worker.streaming.preflight import BrokerCheckFailed, check_brokers

    try:
        return check_brokers(conn, topics=topics, timeout_s=settings.kafka_startup_timeout_s)
    except BrokerCheckFailed as exc:
        raise StartupError(broker_problem_line(exc, settings)) from None


def broker_problem_line(exc: BrokerCheckFailed, settings: Settings) -> str:
    from worker.streaming.preflight import Problem

    at = f"the Kafka broker at {exc.server}"
    proto = settings.kafka_security_protocol
    lines = {
        Problem.UNREACHABLE: (
            f"cannot reach any Kafka bootstrap server within {settings.kafka_startup_timeout_s:g} s "
            f"({exc.detail}): check GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS, that the brokers are "
            "up, and that this host can reach them (DNS, firewall, network policy)"
        ),
        Problem.TLS_FILES: (
            f"cannot load the Kafka TLS files ({exc.detail}): check GUARDSTREAM_KAFKA_SSL_CAFILE, "
            "GUARDSTREAM_KAFKA_SSL_CERTFILE, GUARDSTREAM_KAFKA_SSL_KEYFILE and "
            "GUARDSTREAM_KAFKA_SSL_PASSWORD"
        ),
        Problem.TLS_UNTRUSTED: (
            f"{at} presented a certificate this host does not trust ({exc.detail}): set "
            "GUARDSTREAM_KAFKA_SSL_CAFILE to the CA certificate that signed the broker's"
        ),
        Problem.TLS_HOSTNAME: (
            f"{at} presented a certificate for another name ({exc.detail}): put a host name "
            "from the broker's certificate in GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS"
        ),
        Problem.TLS_NOT_TLS: (
            f"{at} does not answer TLS ({exc.detail}): check GUARDSTREAM_KAFKA_SECURITY_PROTOCOL "
            f"({proto}) against the listener on that port"
        ),
        Problem.TLS_CLIENT_CERT_REQUIRED: (
            f"{at} requires a client certificate (mutual TLS; {exc.detail}): set "
            "GUARDSTREAM_KAFKA_SSL_CERTFILE and GUARDSTREAM_KAFKA_SSL_KEYFILE"
        ),
        Problem.TLS_CLIENT_CERT_REJECTED: (
            f"{at} rejected the client certificate in GUARDSTREAM_KAFKA_SSL_CERTFILE "
            f"({exc.detail}): it must be signed by a CA the broker trusts"
        ),
        Problem.CLOSED_AT_FIRST_REQUEST: (
            f"{at} closed the connection at the first request ({exc.detail}): the listener "
            f"expects another GUARDSTREAM_KAFKA_SECURITY_PROTOCOL than {proto} "
            "(SSL, SASL_SSL, SASL_PLAINTEXT)?"
        ),
        Problem.SASL_MECHANISM: (
            f"{at}: {exc.detail}: set GUARDSTREAM_KAFKA_SASL_MECHANISM to an enabled mechanism"
        ),
        Problem.SASL_AUTHENTICATION: (
            f"{at} rejected the SASL login of user {settings.kafka_sasl_username!r} "
            f"({exc.detail}): check GUARDSTREAM_KAFKA_SASL_USERNAME and "
            "GUARDSTREAM_KAFKA_SASL_PASSWORD"
        ),
        Problem.TOPIC_UNAUTHORIZED: (
            f"{at}: this principal may not use topic {exc.detail} (not even DESCRIBE, which "
            "READ on the input topic and WRITE on the output, dead-letter and review topics "
            "imply): "
            "grant the ACLs in the README (Security, Kafka ACLs)"
        ),
        Problem.ADVERTISED_UNREACHABLE: (
            f"{at} answered, but the brokers advertise addresses this host cannot reach "
            f"({exc.detail}): fix the brokers' advertised.listeners for clients like this one"
        ),
        Problem.TIMEOUT: (
            f"{at} accepted the connection but did not answer within "
            f"{settings.kafka_startup_timeout_s:g} s: is that port a Kafka listener, and is the "
            "broker healthy?"
        ),
    }
    return lines[exc.problem]


def _authorization_line(exc: BaseException, settings: Settings) -> str | None:
    import kafka.errors as errors

    what = str(exc).split(":", 1)[-1].strip() or type(exc).__name__
    if isinstance(exc, errors.TopicAuthorizationFailedError):
        need = f"topic access ({what}): grant READ on the input topic and WRITE on the output, dead-letter and review topics"
    elif isinstance(exc, errors.GroupAuthorizationFailedError):
        need = f"consumer group {settings.group_id!r}: grant READ on the group"
    elif isinstance(exc, errors.TransactionalIdAuthorizationFailedError):
        need = (
            f"transactional id {settings.effective_transactional_id!r} (exactly-once): grant "
            "WRITE and DESCRIBE on that transactional id"
        )
    elif isinstance(exc, errors.ClusterAuthorizationFailedError):
        need = f"the cluster ({what}): grant IDEMPOTENT_WRITE on the cluster"
    else:
        return None
    return f"Kafka denied this principal {need} (README: Security, Kafka ACLs)"


def _as_kafka_python_error(exc: BaseException) -> BaseException:
    """A confluent-kafka ``KafkaException`` carrying a broker error as kafka-python's
    error of that code (librdkafka's broker codes are Kafka's; its local ones are < 0)."""
    import kafka.errors as errors

    confluent_kafka = sys.modules.get("confluent_kafka")  # imported by its driver only
    if confluent_kafka is None or not isinstance(exc, confluent_kafka.KafkaException):
        return exc
    error = exc.args[0] if exc.args else None
    if not isinstance(error, confluent_kafka.KafkaError) or error.code() <= 0:
        return exc
    return errors.for_code(error.code())(error.str())


def kafka_error_line(exc: BaseException, settings: Settings) -> str | None:
    """One line for a kafka-python exception a command cannot recover from, else None."""
    import kafka.errors as errors

    from worker.streaming.preflight import BrokerCheckFailed

    if isinstance(exc, BrokerCheckFailed):
        return broker_problem_line(exc, settings)
    cause: BaseException = exc
    # The worker wraps publish failures (ProduceFailed) around the producer's error.
    while cause.__cause__ is not None and not isinstance(cause, errors.KafkaError):
        cause = cause.__cause__
    cause = _as_kafka_python_error(cause)
    line = _authorization_line(cause, settings)
    if line is not None:
        return line
    if isinstance(cause, errors.SaslAuthenticationFailedError):
        return (
            f"Kafka rejected the SASL login of user {settings.kafka_sasl_username!r}: check "
            "GUARDSTREAM_KAFKA_SASL_USERNAME and GUARDSTREAM_KAFKA_SASL_PASSWORD"
        )
    if isinstance(cause, errors.KafkaTimeoutError) and "bootstrap" in str(cause):
        return (
            f"cannot connect to the Kafka brokers {settings.kafka_bootstrap_servers}: check "
            "GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS, the security settings, and that the brokers "
            "are up"
        )
    return None


@contextmanager
def kafka_errors(settings: Settings) -> Iterator[None]:
    """Known fatal kafka-python errors inside the block become a ``StartupError``."""
    try:
        yield
    except Exception as exc:
        line = kafka_error_line(exc, settings)
        if line is None:
            raise
        raise StartupError(line) from None


def metrics_port_error(exc: OSError, port: int) -> StartupError:
    """The health/metrics server could not bind: exit 2, a configuration problem."""
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another worker on this host?)"
    elif exc.errno == errno.EACCES:
        why = "needs privileges to bind"
    else:
        why = f"cannot be opened ({exc.strerror or exc})"
    return StartupError(
        f"metrics port {port} {why}: give each worker on a host its own "
        "GUARDSTREAM_METRICS_PORT, or 0 to turn the metrics server off",
        exit_code=2,
    )
