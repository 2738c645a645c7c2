"""Fixtures and helpers for the production-backend tests: moto's S3 server, a unique
PostgreSQL schema, unique RabbitMQ queue names, a UDP statsd listener, synthetic crashes."""

from __future__ import annotations

import datetime as dt
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procsupervisor import crashid
from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


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
        self.datagrams = 0
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
            self.datagrams += 1
            self.lines.extend(data.decode("ascii").split("\n"))

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


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


class MotoProcess:
    """moto's S3 server as its own process, so a busy supervisor does not compete with the
    test process's interpreter for it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> MotoProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **AWS_TEST_ENV},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tiny_minidump() -> bytes:
    """A small valid amd64 minidump (one thread, one module, an exception): cheap to walk."""
    from procsupervisor.workers.stackwalker.minidump.builder import (
        SynthMinidump,
        amd64_context,
        cv_elf,
    )

    dump = SynthMinidump()
    stack = dump.add_memory(0x7000, struct.pack("<8Q", 0x401010, 0, 0x401020, 0, 0, 0, 0, 0))
    dump.add_thread(1, amd64_context(rip=0x401005, rsp=0x7000, rbp=0x7010), stack)
    dump.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(b"\x01" * 16))
    dump.set_exception(1, 11, 0x0)
    return dump.build()


@dataclass
class Stack:
    """One isolated production stack on this machine: unique RabbitMQ queues, a unique
    PostgreSQL schema, a bucket on moto, and an ES-protocol server."""

    rabbitmq_url: str
    postgres_dsn: str  # what the supervisor uses (may go through a TcpProxy)
    admin_dsn: str  # direct, for checks
    s3_endpoint: str
    es_url: str
    prefix: str = field(default_factory=lambda: unique_name("pse2e"))

    @property
    def bucket(self) -> str:
        return self.prefix.replace("_", "-")

    @property
    def schema(self) -> str:
        return self.prefix

    def queue_name(self, logical: str) -> str:
        return f"{self.prefix}.{logical}"

    def config_text(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        max_attempts: int = 8,
        retry_delay_s: float = 0.2,
        order: str = "postgres, s3, elasticsearch",
        processor: str = "procsupervisor.workers.processor:Processor",
        processor_options: str = "",
        statsd_port: int | None = None,
    ) -> str:
        return (
            "[supervisor]\n"
            f"data_dir = {data_dir}\n"
            f"workers = {workers}\n"
            "deadline_s = 60\n"
            f"max_attempts = {max_attempts}\n"
            f"retry_delay_s = {retry_delay_s}\n"
            "graceful_timeout_s = 10\n"
            f"processor = {processor}\n"
            "[queue]\n"
            "backend = rabbitmq\n"
            f"url = {self.rabbitmq_url}\n"
            + "".join(f"{q}_queue = {self.queue_name(q)}\n" for q in DEFAULT_QUEUE_NAMES)
            + f"deadletter_queue = {self.queue_name('deadletter')}\n"
            f"retry_queue = {self.queue_name('retry')}\n"
            "reconnect_backoff_s = 0.1, 0.2, 0.5\n"
            "[source]\n"
            "backend = s3\n"
            f"bucket = {self.bucket}\n"
            f"endpoint_url = {self.s3_endpoint}\n"
            "region = us-east-1\n"
            "access_key = testing\n"
            "secret_key = testing\n"
            "[destinations]\n"
            f"order = {order}\n"
            f"postgres_dsn = {self.postgres_dsn}\n"
            f"postgres_schema = {self.schema}\n"
            "postgres_attempts = 2\n"
            "postgres_retry_delay_s = 0.1\n"
            "postgres_connect_timeout_s = 2\n"
            f"s3_bucket = {self.bucket}\n"
            f"s3_endpoint_url = {self.s3_endpoint}\n"
            "s3_region = us-east-1\n"
            "s3_access_key = testing\n"
            "s3_secret_key = testing\n"
            f"elasticsearch_url = {self.es_url}\n"
            "elasticsearch_attempts = 2\n"
            "elasticsearch_backoff_s = 0.05\n"
            "elasticsearch_timeout_s = 5\n"
            "[processor]\n"
            + processor_options
            + (
                f"[statsd]\nhost = 127.0.0.1\nport = {statsd_port}\nprefix = socorro\n"
                if statsd_port
                else ""
            )
            + "[logging]\nlevel = INFO\n"
        )

    def s3(self) -> Any:
        from procsupervisor.storage.s3 import S3CrashStorage

        return S3CrashStorage(
            self.bucket,
            endpoint_url=self.s3_endpoint,
            region="us-east-1",
            access_key="testing",
            secret_key="testing",
        )

    def queue(self) -> Any:
        from procsupervisor.queues.rabbitmq import RabbitMQQueue

        return RabbitMQQueue(
            self.rabbitmq_url,
            names={q: self.queue_name(q) for q in DEFAULT_QUEUE_NAMES},
            deadletter_queue=self.queue_name("deadletter"),
            retry_queue=self.queue_name("retry"),
        )

    def prepare(self) -> None:
        """Bucket and PostgreSQL schema (through `procsupervisor db init`)."""
        from click.testing import CliRunner

        from procsupervisor.storage.db_cli import db

        self.s3().create_bucket()
        result = CliRunner().invoke(db, ["init", "--dsn", self.admin_dsn, "--schema", self.schema])
        if result.exit_code != 0:
            raise RuntimeError(result.output)

    def seed(self, count: int, queue: str = "normal", dump: bytes | None = None) -> list[str]:
        """Store `count` raw crashes (with a tiny dump) in S3, then queue their ids."""
        from concurrent.futures import ThreadPoolExecutor

        dump = tiny_minidump() if dump is None else dump
        ids = [new_crash_id(dt.date(2026, 11, 23 + n % 5)) for n in range(count)]
        storage = self.s3()
        storage.client  # noqa: B018 - made once here, not raced for by the pool's threads

        def store(crash_id: str) -> None:
            raw = synthetic_raw_crash(crash_id, CrashTime=str(1_800_000_000))
            storage.save_raw_crash(raw, {"upload_file_minidump": dump}, crash_id)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(store, ids))
        storage.close()
        publisher = self.queue()
        for crash_id in ids:
            publisher.publish(queue, crash_id)
        publisher.close()
        return ids

    # -- checks ------------------------------------------------------------------------------

    def pg_ids(self) -> set[str]:
        import psycopg2

        connection = psycopg2.connect(self.admin_dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT uuid FROM "{self.schema}".reports')
                reports = {row[0] for row in cursor.fetchall()}
                cursor.execute(f'SELECT uuid FROM "{self.schema}".processed_crashes')
                processed = {row[0] for row in cursor.fetchall()}
            return reports & processed
        finally:
            connection.close()

    def s3_processed_ids(self) -> set[str]:
        client = self.s3().client
        found: set[str] = set()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix="v1/processed_crash/"):
            found.update(obj["Key"].rsplit("/", 1)[1] for obj in page.get("Contents", []))
        return found

    def queue_depths(self) -> dict[str, int]:
        publisher = self.queue()
        depths = publisher.depths()
        publisher.close()
        return depths

    def wait_until(self, predicate: Any, timeout_s: float, what: str, poll_s: float = 0.5) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(poll_s)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")

    def delete_queues(self) -> None:
        """The stack's queues (its retry queues expire by themselves)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.rabbitmq_url))
        channel = connection.channel()
        for name in [*DEFAULT_QUEUE_NAMES, "deadletter"]:
            channel.queue_delete(self.queue_name(name))
        connection.close()

    def cleanup(self) -> None:
        import psycopg2

        self.delete_queues()
        pg = psycopg2.connect(self.admin_dsn)
        pg.autocommit = True
        with pg.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        pg.close()
