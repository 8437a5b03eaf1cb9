"""Optional health server (``--health-port``): ``/health`` and ``/status`` as JSON.

``/health`` answers 200 when the bridge is connected, its data is fresh and the kill
switch is not latched, else 503; the body says which check failed. ``/status`` returns
positions, open orders and today's P&L. The runner publishes a snapshot after every
loop iteration; the HTTP thread only reads that snapshot (never the broker).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HealthState:
    """Thread-safe holder of the latest snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health: dict[str, Any] = {"ok": False, "reason": "starting"}
        self._status: dict[str, Any] = {}

    def publish(self, health: dict[str, Any], status: dict[str, Any]) -> None:
        with self._lock:
            self._health = health
            self._status = status

    def read(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with self._lock:
            return dict(self._health), dict(self._status)


class HealthServer:
    """``http.server`` in a daemon thread, bound to 127.0.0.1 by default."""

    def __init__(self, state: HealthState, port: int, host: str = "127.0.0.1") -> None:
        self.state = state

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                health, status = state.read()
                if self.path.rstrip("/") == "/health":
                    self._send(200 if health.get("ok") else 503, health)
                elif self.path.rstrip("/") == "/status":
                    self._send(200, status)
                else:
                    self._send(404, {"error": "not found", "paths": ["/health", "/status"]})

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="bridge-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
