"""A broker check before a command builds its clients: one connection, step by step.

kafka-python reports most connection problems only as a retry loop and, at the end, a
``KafkaTimeoutError: Unable to bootstrap`` (a wrong SASL password shows up as
"socket disconnected" most of the time; an untrusted certificate is retried until the
timeout). This check walks the same steps once, with blocking sockets, and stops at the
first that fails, naming it:

    TCP connect (retried with backoff until the deadline: a broker may be restarting)
    → TLS handshake (SSL, SASL_SSL) → SaslHandshake + SaslAuthenticate (SASL_*)
    → Metadata for the topics → TCP connect to an advertised broker address

Requests are the oldest versions Kafka 4.x still serves (header v1, non-flexible), so
they are a few lines of ``struct``; kafka-python's own SASL mechanisms compute the tokens.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from worker.streaming.exceptions import StreamingError
from worker.streaming.kafka_config import KafkaConnection

_METADATA, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 3, 17, 36
_TOPIC_AUTHORIZATION_FAILED, _UNKNOWN_TOPIC = 29, 3
_CLIENT_ID = b"guardstream-preflight"


class Problem(StrEnum):
    UNREACHABLE = "unreachable"
    TLS_FILES = "tls-files"
    TLS_UNTRUSTED = "tls-untrusted"
    TLS_HOSTNAME = "tls-hostname"
    TLS_NOT_TLS = "tls-not-tls"
    TLS_CLIENT_CERT_REQUIRED = "tls-client-cert-required"
    TLS_CLIENT_CERT_REJECTED = "tls-client-cert-rejected"
    CLOSED_AT_FIRST_REQUEST = "closed-at-first-request"
    SASL_MECHANISM = "sasl-mechanism"
    SASL_AUTHENTICATION = "sasl-authentication"
    TOPIC_UNAUTHORIZED = "topic-unauthorized"
    ADVERTISED_UNREACHABLE = "advertised-unreachable"
    TIMEOUT = "timeout"


class BrokerCheckFailed(StreamingError):
    """The check stopped at ``problem``; ``detail`` says what the library or broker said
    (never a secret), ``server`` which address it was talking to."""

    def __init__(self, problem: Problem, detail: str, server: str | None = None) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail
        self.server = server


@dataclass(frozen=True)
class BrokerCheck:
    """What the check saw: the broker it talked to, the advertised brokers, and the
    asked-for topics the broker does not know (not fatal: they may be created later)."""

    server: str
    brokers: tuple[tuple[str, int], ...]
    unknown_topics: tuple[str, ...] = field(default=())


def check_brokers(
    conn: KafkaConnection, *, topics: Sequence[str] = (), timeout_s: float = 30.0
) -> BrokerCheck:
    deadline = time.monotonic() + timeout_s
    servers = [s.strip() for s in conn.bootstrap_servers.split(",") if s.strip()]
    sock, server = _connect_any(servers, deadline)
    try:
        sock = _start_tls(sock, conn, server, deadline)
        channel = _Channel(sock, conn, server, deadline)
        if conn.security_protocol.startswith("SASL"):
            _authenticate(channel, conn)
        brokers, topic_errors = channel.metadata(list(topics))
    finally:
        sock.close()
    denied = [name for name, code in topic_errors if code == _TOPIC_AUTHORIZATION_FAILED]
    if denied:
        raise BrokerCheckFailed(Problem.TOPIC_UNAUTHORIZED, ", ".join(denied), server)
    unknown = tuple(name for name, code in topic_errors if code == _UNKNOWN_TOPIC)
    _check_advertised(brokers, server, deadline)
    return BrokerCheck(server=server, brokers=tuple(brokers), unknown_topics=unknown)


# --- TCP -----------------------------------------------------------------------------


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]") or server, int(port or 9092)


def _connect_any(servers: list[str], deadline: float) -> tuple[socket.socket, str]:
    """The first server that accepts a TCP connection, retried with backoff until the
    deadline; the error names every server and why it failed last."""
    errors: dict[str, str] = {}
    delay = 0.25
    while True:
        for server in servers:
            try:
                host, port = _split(server)
                timeout = max(0.1, min(5.0, deadline - time.monotonic()))
                return socket.create_connection((host, port), timeout=timeout), server
            except (OSError, ValueError) as exc:
                errors[server] = _os_error(exc)
        if time.monotonic() + delay >= deadline:
            detail = "; ".join(f"{s}: {e}" for s, e in errors.items())
            raise BrokerCheckFailed(Problem.UNREACHABLE, detail)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name not resolved ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "connect timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _check_advertised(brokers: list[tuple[str, int]], server: str, deadline: float) -> None:
    """Clients reconnect to the addresses the brokers advertise, not the bootstrap
    list: one of them must be reachable from here (a common Kubernetes mistake)."""
    if not brokers or any(f"{h}:{p}" == server for h, p in brokers):
        return
    errors = []
    for host, port in brokers:
        try:
            timeout = max(0.1, min(5.0, deadline - time.monotonic()))
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError as exc:
            errors.append(f"{host}:{port}: {_os_error(exc)}")
    raise BrokerCheckFailed(Problem.ADVERTISED_UNREACHABLE, "; ".join(errors), server)


# --- TLS -----------------------------------------------------------------------------


def tls_context(conn: KafkaConnection) -> ssl.SSLContext:
    """The context kafka-python builds from the same settings (its KafkaSSLTransport)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = conn.ssl_check_hostname is not False
    what = f"ssl_cafile {conn.ssl_cafile}" if conn.ssl_cafile else "the system CA certificates"
    try:
        if conn.ssl_cafile:
            ctx.load_verify_locations(conn.ssl_cafile)
        else:
            ctx.load_default_certs()
        if conn.ssl_certfile:
            what = f"ssl_certfile {conn.ssl_certfile} / ssl_keyfile {conn.ssl_keyfile}"
            ctx.load_cert_chain(conn.ssl_certfile, conn.ssl_keyfile, conn.ssl_password)
    except (OSError, ssl.SSLError) as exc:  # missing file, not PEM, wrong key password
        raise BrokerCheckFailed(Problem.TLS_FILES, f"{what}: {_ssl_reason(exc)}") from None
    return ctx


def _start_tls(
    sock: socket.socket, conn: KafkaConnection, server: str, deadline: float
) -> socket.socket:
    if conn.security_protocol not in ("SSL", "SASL_SSL"):
        return sock
    ctx = tls_context(conn)
    host, _ = _split(server)
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        hostname = exc.verify_code in (62, 64)  # X509_V_ERR_HOSTNAME/IP_ADDRESS_MISMATCH
        problem = Problem.TLS_HOSTNAME if hostname else Problem.TLS_UNTRUSTED
        raise BrokerCheckFailed(problem, exc.verify_message or _ssl_reason(exc), server) from None
    except ssl.SSLError as exc:
        raise _tls_alert(exc, conn, server) from None
    except (ConnectionError, TimeoutError) as exc:
        raise BrokerCheckFailed(
            Problem.TLS_NOT_TLS, f"handshake ended: {_os_error(exc)}", server
        ) from None


def _tls_alert(exc: ssl.SSLError, conn: KafkaConnection, server: str) -> BrokerCheckFailed:
    """An alert from the broker: it wants a client certificate, or not ours. TLS 1.3
    sends it after the handshake, so this also runs on the first read."""
    reason = _ssl_reason(exc)
    code = str(getattr(exc, "reason", "") or "").upper()
    if code in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNEXPECTED_EOF_WHILE_READING"):
        return BrokerCheckFailed(Problem.TLS_NOT_TLS, reason, server)
    if any(
        a in code
        for a in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN")
    ):
        problem = (
            Problem.TLS_CLIENT_CERT_REJECTED
            if conn.ssl_certfile
            else Problem.TLS_CLIENT_CERT_REQUIRED
        )
        return BrokerCheckFailed(problem, reason, server)
    return BrokerCheckFailed(Problem.TLS_UNTRUSTED, reason, server)


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason:
        return str(reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror.lower()}: {exc.filename}" if exc.filename else exc.strerror.lower()
    return str(exc)


# --- Kafka requests ------------------------------------------------------------------


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str | None:
        size = self.take(">h")
        if size < 0:
            return None
        value = self.data[self.at : self.at + size].decode("utf-8", "replace")
        self.at += size
        return value

    def bytes_(self) -> bytes:
        size = self.take(">i")
        value = self.data[self.at : self.at + max(size, 0)]
        self.at += max(size, 0)
        return value


class _Channel:
    """Request/response on the checked socket; a close or TLS alert becomes a Problem."""

    def __init__(
        self, sock: socket.socket, conn: KafkaConnection, server: str, deadline: float
    ) -> None:
        self.sock, self.conn, self.server, self.deadline = sock, conn, server, deadline
        self.correlation = 0

    def request(self, api_key: int, version: int, body: bytes) -> _Reader:
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _string(
            _CLIENT_ID.decode()
        )
        frame = header + body
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerCheckFailed(Problem.TIMEOUT, "no answer within the time limit", self.server)
        self.sock.settimeout(remaining)
        try:
            self.sock.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", self._read(4))[0]
            reply = _Reader(self._read(size))
        except ssl.SSLError as exc:
            raise _tls_alert(exc, self.conn, self.server) from None
        except TimeoutError:
            raise BrokerCheckFailed(
                Problem.TIMEOUT,
                "the broker accepted the connection but did not answer",
                self.server,
            ) from None
        except ConnectionError as exc:
            raise BrokerCheckFailed(
                Problem.CLOSED_AT_FIRST_REQUEST, _os_error(exc), self.server
            ) from None
        if reply.take(">i") != self.correlation:
            raise BrokerCheckFailed(
                Problem.CLOSED_AT_FIRST_REQUEST, "not a Kafka answer", self.server
            )
        return reply

    def _read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self.sock.recv(min(left, 65536))
            if not chunk:
                raise ConnectionResetError("the broker closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def metadata(self, topics: list[str]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Metadata v4 for ``topics`` (none: just the brokers): the advertised broker
        addresses and each topic's error code."""
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
        reply = self.request(_METADATA, 4, body + struct.pack(">b", 0))
        reply.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(reply.take(">i")):
            reply.take(">i")  # node_id
            host = reply.string() or ""
            port = reply.take(">i")
            reply.string()  # rack
            brokers.append((host, port))
        reply.string()  # cluster_id
        reply.take(">i")  # controller_id
        errors = []
        for _ in range(reply.take(">i")):
            code = reply.take(">h")
            name = reply.string() or ""
            reply.take(">b")  # is_internal
            for _ in range(reply.take(">i")):
                reply.take(">hii")  # error_code, partition, leader
                _skip_ints(reply)  # replica nodes
                _skip_ints(reply)  # in-sync replicas (v4 has no offline replicas yet)
            if code:
                errors.append((name, code))
        return brokers, errors


def _skip_ints(reply: _Reader) -> None:
    count = reply.take(">i")
    reply.at += 4 * max(count, 0)


def _authenticate(channel: _Channel, conn: KafkaConnection) -> None:
    from kafka.net.sasl import get_sasl_mechanism

    mechanism_name = conn.sasl_mechanism or "PLAIN"
    reply = channel.request(_SASL_HANDSHAKE, 1, _string(mechanism_name))
    code = reply.take(">h")
    enabled = [reply.string() or "" for _ in range(reply.take(">i"))]
    if code or mechanism_name not in enabled:
        raise BrokerCheckFailed(
            Problem.SASL_MECHANISM,
            f"{mechanism_name} is not enabled on this listener (enabled: {', '.join(enabled) or 'none'})",
            channel.server,
        )
    if mechanism_name not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        return  # OAUTHBEARER/GSSAPI need more than a password: kafka-python does it
    host, _ = _split(channel.server)
    mechanism = get_sasl_mechanism(mechanism_name)(
        host=host,
        sasl_mechanism=mechanism_name,
        sasl_plain_username=conn.sasl_plain_username or "",
        sasl_plain_password=conn.sasl_plain_password or "",
        security_protocol=conn.security_protocol,
    )
    while not mechanism.is_done():
        token = mechanism.auth_bytes()
        reply = channel.request(_SASL_AUTHENTICATE, 0, struct.pack(">i", len(token)) + token)
        code = reply.take(">h")
        message = reply.string()
        if code:
            raise BrokerCheckFailed(
                Problem.SASL_AUTHENTICATION, message or f"error code {code}", channel.server
            )
        try:
            mechanism.receive(reply.bytes_())
        except ValueError as exc:  # a server-final message that does not verify
            raise BrokerCheckFailed(Problem.SASL_AUTHENTICATION, str(exc), channel.server) from None
