"""One small HTTP server for /metrics (Prometheus), /healthz and /readyz.

/healthz is liveness: the consumer loop has turned recently (not deadlocked).
/readyz is readiness: model loaded, broker answered recently, partitions assigned or
the group joined, and (with banks) the hash bank topic read up to its end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass
class HealthState:
    liveness_timeout_s: float = 60.0
    broker_timeout_s: float = 60.0
    model_loaded: bool = False
    consuming: bool = False
    hash_bank_ready: Callable[[], bool] | None = None
    """With known-bad image banks: ``BankFollower.ready`` (caught up, still following)."""
    _last_loop: float = field(default_factory=time.monotonic)
    _last_broker_ok: float = 0.0

    def loop_turned(self) -> None:
        self._last_loop = time.monotonic()

    def broker_ok(self) -> None:
        self._last_broker_ok = time.monotonic()

    def live(self) -> tuple[bool, str]:
        age = time.monotonic() - self._last_loop
        if age > self.liveness_timeout_s:
            return False, f"consumer loop stalled for {age:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        live, reason = self.live()
        if not live:
            return False, reason
        if not self.model_loaded:
            return False, "model not loaded"
        if self.hash_bank_ready is not None and not self.hash_bank_ready():
            return False, "hash bank not caught up"
        if time.monotonic() - self._last_broker_ok > self.broker_timeout_s:
            return False, "broker not reachable"
        if not self.consuming:
            return False, "not consuming yet"
        return True, "ok"


class HealthServer:
    def __init__(
        self, port: int, state: HealthState, registry: CollectorRegistry, host: str = "0.0.0.0"
    ) -> None:
        self.state = state
        handler = _make_handler(state, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(state: HealthState, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._status(*state.live())
            elif path == "/readyz":
                self._status(*state.ready())
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _status(self, ok: bool, reason: str) -> None:
            self._reply(200 if ok else 503, (reason + "\n").encode(), "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would flood the logs

    return Handler
