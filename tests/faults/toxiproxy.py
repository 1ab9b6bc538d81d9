"""Toxiproxy (github.com/Shopify/toxiproxy) for the network fault tests: the server as a
subprocess, and its HTTP API (proxies, toxics) through urllib.

Toxics used here (all on the downstream, server → client, unless noted):
``latency`` (ms, jitter), ``bandwidth`` (KB/s), ``reset_peer`` (TCP RST ``timeout`` ms
after each connection starts), ``limit_data`` (close after N bytes: bodies cut midway),
``timeout`` with ``timeout=0`` (a blackhole: connections are accepted and data is
dropped until the toxic is removed). ``toxicity`` < 1 applies a toxic to that fraction
of the connections only.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


class Toxiproxy:
    def __init__(self, binary: str, port: int, log_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = (log_dir / "toxiproxy.log").open("ab")
        self._proc = subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        time.sleep(0.2)  # a server left on the port would answer; ours must have bound it
        if self._proc.poll() is not None:
            self._log.close()
            raise RuntimeError(f"toxiproxy-server exited at once (port {port} taken?)")
        while True:
            try:
                self._call("GET", "/version")
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(
                        f"toxiproxy-server did not start (see {self._log.name})"
                    ) from None
                time.sleep(0.2)

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._log.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        try:
            return json.loads(text) if text else None
        except ValueError:  # GET /version answers plain text
            return text.decode()

    # --- proxies -----------------------------------------------------------------------

    def proxy(self, name: str, listen_port: int, upstream: str) -> Proxy:
        """(Re)create ``name``: 127.0.0.1:``listen_port`` → ``upstream``, no toxics."""
        with suppress(urllib.error.HTTPError):  # not there yet
            self._call("DELETE", f"/proxies/{name}")
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": f"127.0.0.1:{listen_port}", "upstream": upstream},
        )
        return Proxy(self, name, listen_port)


class Proxy:
    def __init__(self, server: Toxiproxy, name: str, port: int) -> None:
        self.server, self.name, self.port = server, name, port
        self.injected: list[str] = []
        """Every toxic added, in order (for the FAULTS line)."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(
        self,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> str:
        name = f"{kind}_{stream}_{len(self.injected)}"
        self.server._call(
            "POST",
            f"/proxies/{self.name}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        label = kind + "(" + ",".join(f"{k}={v}" for k, v in attributes.items())
        self.injected.append(label + (f",toxicity={toxicity}" if toxicity < 1 else "") + ")")
        return name

    def remove(self, toxic: str) -> None:
        self.server._call("DELETE", f"/proxies/{self.name}/toxics/{toxic}")

    def clear(self) -> None:
        for toxic in self.server._call("GET", f"/proxies/{self.name}/toxics") or []:
            self.remove(toxic["name"])

    def set_enabled(self, enabled: bool) -> None:
        """Disabled: open connections are closed and new ones refused (unreachable)."""
        self.server._call("POST", f"/proxies/{self.name}", {"enabled": enabled})
        self.injected.append("enabled" if enabled else "disabled")

    @contextmanager
    def toxic(self, kind: str, **kwargs: Any) -> Iterator[str]:
        name = self.add(kind, **kwargs)
        try:
            yield name
        finally:
            self.remove(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
