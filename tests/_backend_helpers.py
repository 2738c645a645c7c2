"""Fixtures and helpers for the production-backend tests: moto's S3 server, a unique
PostgreSQL schema, unique RabbitMQ queue names, a UDP statsd listener, synthetic crashes."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from procsupervisor import crashid

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoS3:
    """moto in server mode on a loopback port; clients reach it over real HTTP."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_name(stem: str) -> str:
    """A name no other test run (or engineer) on this machine uses."""
    return f"{stem}_{uuid.uuid4().hex[:10]}"


def new_crash_id(day: dt.date | None = None) -> str:
    when = dt.datetime.combine(day or dt.date(2026, 11, 25), dt.time(12), dt.UTC)
    return crashid.create(when)


def synthetic_raw_crash(crash_id: str, **extra: Any) -> dict[str, Any]:
    """A small raw crash of the shape a collector stores."""
    day = crashid.date_of(crash_id)
    raw: dict[str, Any] = {
        "uuid": crash_id,
        "ProductName": "Firefox",
        "Version": "120.0",
        "BuildID": "20231120000000",
        "ReleaseChannel": "release",
        "submitted_timestamp": f"{day.isoformat()}T12:00:00+00:00",
        "CrashTime": "1700000000",
        "legacy_processing": 0,
        "throttle_rate": 100,
    }
    raw.update(extra)
    return raw


def synthetic_processed_crash(crash_id: str, **extra: Any) -> dict[str, Any]:
    """A processed crash with the fields the destinations map, as the processor writes them."""
    day = crashid.date_of(crash_id)
    processed: dict[str, Any] = {
        "uuid": crash_id,
        "crash_id": crash_id,
        "date_processed": f"{day.isoformat()}T12:00:00+00:00",
        "started_datetime": f"{day.isoformat()}T12:00:01+00:00",
        "completed_datetime": f"{day.isoformat()}T12:00:02+00:00",
        "success": True,
        "signature": "OOM | small",
        "product": "Firefox",
        "version": "120.0",
        "release_channel": "release",
        "os_name": "Windows NT",
        "os_version": "10.0.19045",
        "cpu_arch": "amd64",
        "cpu_info": "family 6 model 158 stepping 10",
        "address": "0x0",
        "reason": "EXCEPTION_ACCESS_VIOLATION_READ",
        "uptime": 120,
        "install_age": 3600,
        "processor_notes": "",
        "process_type": "parent",
        "build": "20231120000000",
        "json_dump": {"status": "OK", "threads": [], "system_info": {"os": "Windows NT"}},
    }
    processed.update(extra)
    return processed


class StatsdListener:
    """A UDP socket on loopback that collects the datagrams a statsd client sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(data.decode("ascii").split("\n"))

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout_s)
        while len(self.lines) < count and dt.datetime.now() < deadline:
            threading.Event().wait(0.01)
        return list(self.lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


def iter_chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TcpProxy:
    """A loopback TCP forwarder that can be taken down and brought back, to simulate an
    outage of a shared service (PostgreSQL) without stopping the service itself."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepting = threading.Event()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._accepting.set()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        return self

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a crashed server would."""
        self._accepting.clear()
        if self._listener is not None:
            # close() alone does not wake a thread blocked in accept(); shutdown() does.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
