"""An optional Prometheus text endpoint (`[supervisor] metrics_listen = 127.0.0.1:9187`),
served from the supervisor's own event loop (docs/operations.md, "Metrics").

No thread and no HTTP server library: the supervisor forks workers, and a thread alive at a
fork is a hazard, so the listener is one more non-blocking socket in the loop's selector. Each
connection sends one small `GET /metrics` request and gets the current figures (the gauges the
supervisor also sends to statsd, plus its totals as counters), then the connection closes. It
listens on loopback only: the figures are for a local Prometheus agent, not the network.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from procsupervisor import config_keys

log = logging.getLogger("procsupervisor.supervisor")

MAX_REQUEST_BYTES = 8192
CONNECTION_TIMEOUT_S = 5.0
PREFIX = "procsupervisor_"
TOTALS = ("processed", "failed", "retried", "dead_lettered")


class MetricsEndpointError(ValueError):
    """metrics_listen is not a loopback host:port, or cannot be bound."""


def parse_listen(text: str) -> tuple[str, int]:
    try:
        return config_keys.loopback_listen(text)
    except ValueError as exc:
        raise MetricsEndpointError(f"metrics_listen {exc}") from None


class MetricsEndpoint:
    def __init__(self, listen: str, render: Callable[[], str]) -> None:
        host, port = parse_listen(listen)
        self.render = render
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((host, port))
            self.listener.listen(16)
        except OSError as exc:
            self.listener.close()
            raise MetricsEndpointError(f"cannot listen on {listen}: {exc.strerror or exc}")
        self.listener.setblocking(False)
        self.connections: dict[int, tuple[socket.socket, bytearray, float]] = {}

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]

    def accept(self) -> socket.socket | None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        sock.setblocking(False)
        self.connections[sock.fileno()] = (sock, bytearray(), time.monotonic())
        return sock

    def readable(self, fd: int) -> bool:
        """Read a request; True when the connection is finished (answered or dropped)."""
        sock, buffer, _ = self.connections[fd]
        try:
            data = sock.recv(MAX_REQUEST_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._close(fd)
            return True
        buffer += data
        if b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
            if len(buffer) <= MAX_REQUEST_BYTES:
                return False
            self._answer(fd, "431 Request Header Fields Too Large", "")
            return True
        request_line = bytes(buffer).split(b"\n", 1)[0].decode("latin-1").split()
        if len(request_line) < 2 or request_line[0] not in ("GET", "HEAD"):
            self._answer(fd, "405 Method Not Allowed", "")
        elif request_line[1].split("?", 1)[0] not in ("/metrics", "/"):
            self._answer(fd, "404 Not Found", "")
        else:
            body = self.render()
            self._answer(fd, "200 OK", "" if request_line[0] == "HEAD" else body)
        return True

    def _answer(self, fd: int, status: str, body: str) -> None:
        sock = self.connections[fd][0]
        payload = body.encode()
        head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode()
        try:
            sock.settimeout(1.0)  # small replies: a short blocking send keeps this simple
            sock.sendall(head + payload)
        except OSError:
            pass
        self._close(fd)

    def expire(self) -> list[int]:
        now = time.monotonic()
        stale = [fd for fd, (_, _, opened) in self.connections.items()
                 if now - opened > CONNECTION_TIMEOUT_S]
        for fd in stale:
            self._close(fd)
        return stale

    def _close(self, fd: int) -> None:
        entry = self.connections.pop(fd, None)
        if entry is not None:
            entry[0].close()

    def close(self) -> None:
        for fd in list(self.connections):
            self._close(fd)
        self.listener.close()


def exposition(gauges: Mapping[str, float], status: Mapping[str, Any]) -> str:
    """The Prometheus text format: every gauge, the totals as counters."""
    lines: list[str] = []
    typed: set[str] = set()

    def add(name: str, kind: str, value: float, labels: str = "") -> None:
        if name not in typed:
            typed.add(name)
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{labels} {value:g}")

    for key, value in sorted(gauges.items()):
        base = key.removeprefix("supervisor.")
        if base.startswith("queue_depth."):
            queue = _label(base.removeprefix("queue_depth."))
            add(PREFIX + "queue_depth", "gauge", value, f'{{queue="{queue}"}}')
        else:
            add(PREFIX + re.sub(r"[^a-zA-Z0-9_]", "_", base), "gauge", value)
    totals = status.get("totals") or {}
    for key in TOTALS:
        if key in totals:
            add(f"{PREFIX}crashes_{key}_total", "counter", totals[key])
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
