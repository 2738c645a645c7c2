"""Throughput on the production backends, printed as figures (run by hand, not in CI).

1. End to end: RabbitMQ (this machine) + S3 (moto server) + PostgreSQL (this machine) +
   Elasticsearch (the ES-protocol server of tests/es_server.py, run as its own program), the
   real processor on small synthetic minidumps, `procsupervisor start` with N workers. Crashes
   are stored and queued first; the clock runs while the supervisor drains them.
2. Dispatch ceiling on RabbitMQ: the same supervisor with the package's BenchProcessor (no
   work), the fs source and no destination, so the figure is what the supervisor, RabbitMQ
   (basic_get + ack per crash) and the worker pipes sustain. Also the raw get+ack rate of one
   RabbitMQ client, the ceiling of any single-connection consumer.

Throughput is taken in steady state, between 10% and 90% of the crashes acked, from the
supervisor's counters polled over its control socket.

    .venv/bin/python scripts/bench_e2e.py [--crashes 1000] [--workers 2]
        [--ceiling-crashes 5000] [--ceiling-workers 4] [--skip-e2e] [--skip-ceiling]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procsupervisor import crashid
from procsupervisor.queues.base import DEFAULT_QUEUE_NAMES
from procsupervisor.queues.rabbitmq import RabbitMQQueue
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.storage.s3 import S3CrashStorage
from procsupervisor.supervisor.control import request
from procsupervisor.workers.stackwalker.minidump.builder import (
    SynthMinidump,
    amd64_context,
    cv_elf,
)

ROOT = Path(__file__).resolve().parent.parent
ES_SERVER = ROOT / "tests" / "es_server.py"
AMQP_URL = os.environ.get("PROCSUPERVISOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_DSN = os.environ.get(
    "PROCSUPERVISOR_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BENCH_PROCESSOR = "procsupervisor.workers.bench_processor:BenchProcessor"
POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_crash_id(day: dt.date) -> str:
    return crashid.create(dt.datetime.combine(day, dt.time(12), dt.UTC))


def tiny_minidump() -> bytes:
    """A small valid amd64 minidump (one thread, one module, an exception): cheap to walk."""
    dump = SynthMinidump()
    stack = dump.add_memory(0x7000, struct.pack("<8Q", 0x401010, 0, 0x401020, 0, 0, 0, 0, 0))
    dump.add_thread(1, amd64_context(rip=0x401005, rsp=0x7000, rbp=0x7010), stack)
    dump.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(b"\x01" * 16))
    dump.set_exception(1, 11, 0x0)
    return dump.build()


class Server:
    """A program serving on a loopback port (moto's S3 server, the ES-protocol server)."""

    def __init__(self, argv: Callable[[int], list[str]], env: dict[str, str] | None = None):
        self.port = free_port()
        self.argv = argv(self.port)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> Server:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(POLL_S)
        self.stop()
        raise RuntimeError(f"{self.argv[:3]} did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Stack:
    """Unique RabbitMQ queues, PostgreSQL schema and S3 bucket for one run on shared servers."""

    s3_endpoint: str = ""
    es_url: str = ""
    prefix: str = field(default_factory=lambda: f"pse2e_{uuid.uuid4().hex[:10]}")

    @property
    def bucket(self) -> str:
        return self.prefix.replace("_", "-")

    def queue_name(self, logical: str) -> str:
        return f"{self.prefix}.{logical}"

    def config_text(self, data_dir: Path, workers: int, processor: str, *, fs_source: bool,
                    order: str) -> str:  # fmt: skip
        source = (
            "backend = fs\n"
            if fs_source
            else f"backend = s3\nbucket = {self.bucket}\nendpoint_url = {self.s3_endpoint}\n"
            "region = us-east-1\naccess_key = testing\nsecret_key = testing\n"
        )
        return (
            f"[supervisor]\ndata_dir = {data_dir}\nworkers = {workers}\ndeadline_s = 60\n"
            f"max_attempts = 8\nretry_delay_s = 0.2\ngraceful_timeout_s = 10\n"
            f"processor = {processor}\n"
            f"[queue]\nbackend = rabbitmq\nurl = {AMQP_URL}\n"
            + "".join(f"{q}_queue = {self.queue_name(q)}\n" for q in DEFAULT_QUEUE_NAMES)
            + f"deadletter_queue = {self.queue_name('deadletter')}\n"
            f"retry_queue = {self.queue_name('retry')}\nreconnect_backoff_s = 0.1, 0.2, 0.5\n"
            f"[source]\n{source}"
            f"[destinations]\norder = {order}\n"
            f"postgres_dsn = {PG_DSN}\npostgres_schema = {self.prefix}\npostgres_attempts = 2\n"
            "postgres_retry_delay_s = 0.1\npostgres_connect_timeout_s = 2\n"
            f"s3_bucket = {self.bucket}\ns3_endpoint_url = {self.s3_endpoint}\n"
            "s3_region = us-east-1\ns3_access_key = testing\ns3_secret_key = testing\n"
            f"elasticsearch_url = {self.es_url}\nelasticsearch_attempts = 2\n"
            "elasticsearch_backoff_s = 0.05\nelasticsearch_timeout_s = 5\n"
            "[processor]\n[logging]\nlevel = INFO\n"
        )

    def s3(self) -> S3CrashStorage:
        return S3CrashStorage(
            self.bucket, endpoint_url=self.s3_endpoint, region="us-east-1",
            access_key="testing", secret_key="testing",
        )  # fmt: skip

    def queue(self) -> RabbitMQQueue:
        return RabbitMQQueue(
            AMQP_URL,
            names={q: self.queue_name(q) for q in DEFAULT_QUEUE_NAMES},
            deadletter_queue=self.queue_name("deadletter"),
            retry_queue=self.queue_name("retry"),
        )

    def prepare(self) -> None:
        """Bucket and PostgreSQL schema (through `procsupervisor db init`)."""
        from click.testing import CliRunner

        from procsupervisor.storage.db_cli import db

        self.s3().create_bucket()
        result = CliRunner().invoke(db, ["init", "--dsn", PG_DSN, "--schema", self.prefix])
        if result.exit_code != 0:
            raise RuntimeError(result.output)

    def seed(self, count: int) -> list[str]:
        """Store `count` raw crashes (with a tiny dump) in S3, then queue their ids."""
        dump = tiny_minidump()
        ids = [new_crash_id(dt.date(2026, 11, 23 + n % 5)) for n in range(count)]
        storage = self.s3()
        storage.client  # noqa: B018 - made once here, not raced for by the pool's threads

        def store(crash_id: str) -> None:
            day = crashid.date_of(crash_id).isoformat()
            raw = {
                "uuid": crash_id, "ProductName": "Firefox", "Version": "120.0",
                "BuildID": "20231120000000", "ReleaseChannel": "release",
                "submitted_timestamp": f"{day}T12:00:00+00:00", "CrashTime": "1800000000",
                "legacy_processing": 0, "throttle_rate": 100,
            }  # fmt: skip
            storage.save_raw_crash(raw, {"upload_file_minidump": dump}, crash_id)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(store, ids))
        storage.close()
        self.publish(ids)
        return ids

    def publish(self, ids: list[str]) -> None:
        publisher = self.queue()
        for crash_id in ids:
            publisher.publish("normal", crash_id)
        publisher.close()

    def pg_ids(self) -> set[str]:
        import psycopg2

        connection = psycopg2.connect(PG_DSN)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT uuid FROM "{self.prefix}".reports')
                reports = {row[0] for row in cursor.fetchall()}
                cursor.execute(f'SELECT uuid FROM "{self.prefix}".processed_crashes')
                return reports & {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()

    def delete_queues(self) -> None:
        """The run's queues (its retry queues expire by themselves)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for name in [*DEFAULT_QUEUE_NAMES, "deadletter"]:
            channel.queue_delete(self.queue_name(name))
        connection.close()

    def drop_schema(self) -> None:
        import psycopg2

        connection = psycopg2.connect(PG_DSN)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{self.prefix}" CASCADE')
        connection.close()


class Supervisor:
    """`procsupervisor start` in a subprocess, watched over its control socket."""

    def __init__(self, config: Path, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"supervisor-{time.time_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> Supervisor:
        """Launch and wait until every worker is up."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROCSUPERVISOR_")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "procsupervisor", "--config", str(self.config), "start"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.wait_for(
            lambda s: len(s["workers"]) >= s["target_workers"]
            and all(w["state"] != "starting" for w in s["workers"]),
            timeout_s,
            "workers ready",
        )
        return self

    def status(self) -> dict[str, Any]:
        return request(self.data_dir / "control.sock", "status", timeout=10)["status"]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"supervisor exited ({self.proc.returncode}):\n{tail}")
            try:
                if predicate(self.status()):
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(POLL_S)
        raise RuntimeError(f"timed out waiting for {what}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def acked_total(status: dict[str, Any]) -> int:
    return sum(q["acked"] for q in status["queues"].values())


def steady_rate(supervisor: Supervisor, total: int, timeout_s: float) -> float:
    """Crashes/s between 10% and 90% of `total` acked."""
    low, high = int(total * 0.1), int(total * 0.9)
    marks: dict[str, tuple[float, int]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = acked_total(supervisor.status())
        now = time.monotonic()
        if "low" not in marks and done >= low:
            marks["low"] = (now, done)
        if done >= high:
            if "low" not in marks or marks["low"][1] >= done:
                raise RuntimeError("finished between two polls: use more crashes")
            start_t, start_n = marks["low"]
            return (done - start_n) / max(now - start_t, 1e-6)
        time.sleep(POLL_S)
    raise RuntimeError(f"timed out: {acked_total(supervisor.status())}/{total} acked")


def stage_medians(log_text: str) -> dict[str, float]:
    medians = {}
    for stage in ("fetch_ms", "process_ms", "save_ms", "total_ms"):
        values = [float(v) for v in re.findall(rf"crash done.*? {stage}=([0-9.]+)", log_text)]
        if values:
            medians[stage] = statistics.median(values)
    return medians


def bench_end_to_end(crashes: int, workers: int, root: Path) -> None:
    moto = Server(
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        AWS_TEST_ENV,
    ).start()
    es = Server(lambda port: [sys.executable, str(ES_SERVER), str(port)]).start()
    stack = Stack(s3_endpoint=moto.url, es_url=es.url)
    supervisor = None
    try:
        stack.prepare()
        data_dir = root / "e2e"
        data_dir.mkdir()
        config = root / "e2e.ini"
        config.write_text(
            stack.config_text(
                data_dir, workers, "procsupervisor.workers.processor:Processor",
                fs_source=False, order="postgres, s3, elasticsearch",
            )  # fmt: skip
        )
        supervisor = Supervisor(config, data_dir).start()
        # Stored and queued while the supervisor is up (its workers idle); the first 10% of
        # acks are excluded from the rate, so seeding does not count.
        ids = stack.seed(crashes)
        rate = steady_rate(supervisor, crashes, timeout_s=600)
        supervisor.wait_for(lambda s: acked_total(s) >= crashes, 300, "every crash acked")
        medians = stage_medians(supervisor.log_path.read_text(errors="replace"))
        landed = len(stack.pg_ids())
    finally:
        if supervisor is not None:
            supervisor.stop()
        stack.delete_queues()
        stack.drop_schema()
        es.stop()
        moto.stop()
    print(f"end to end (RabbitMQ + S3/moto + PostgreSQL + ES-protocol server), {workers} workers")
    print(f"  crashes: {len(ids)}, in PostgreSQL: {landed}")
    print(f"  steady throughput: {rate:.1f} crashes/s")
    per_crash = ", ".join(f"{k} {v:.1f}" for k, v in medians.items())
    print(f"  median per crash (ms): {per_crash}")


def bench_raw_get_ack(count: int) -> float:
    """One client: publish `count`, then basic_get + basic_ack them all; gets+acks per second."""
    stack = Stack()
    queue = stack.queue()
    try:
        for _ in range(count):
            queue.publish("normal", new_crash_id(dt.date(2026, 11, 25)))
        started = time.perf_counter()
        taken = 0
        while (delivery := queue.get("normal")) is not None:
            queue.ack(delivery)
            taken += 1
        elapsed = time.perf_counter() - started
    finally:
        queue.close()
        stack.delete_queues()
    return taken / elapsed


def bench_dispatch_ceiling(crashes: int, workers: int, root: Path) -> float:
    stack = Stack()
    data_dir = root / "ceiling"
    data_dir.mkdir()
    storage = FSCrashStorage(data_dir / "crashes")
    ids = [new_crash_id(dt.date(2026, 11, 25)) for _ in range(crashes)]
    for crash_id in ids:
        storage.save_raw_crash({"uuid": crash_id, "ProductName": "Bench"}, {}, crash_id)
    # fs source for the ceiling: S3 reads would measure moto, not the supervisor.
    config = root / "ceiling.ini"
    config.write_text(stack.config_text(data_dir, workers, BENCH_PROCESSOR, fs_source=True,
                                        order=""))  # fmt: skip
    # Queued before the supervisor starts: it drains faster than one client publishes.
    stack.publish(ids)
    supervisor = Supervisor(config, data_dir).start()
    try:
        rate = steady_rate(supervisor, crashes, timeout_s=600)
    finally:
        supervisor.stop()
        stack.delete_queues()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ceiling-crashes", type=int, default=5000)
    parser.add_argument("--ceiling-workers", type=int, default=4)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} CPUs; run id {Stack().prefix}")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        root = Path(tmp)
        if not args.skip_e2e:
            bench_end_to_end(args.crashes, args.workers, root)
        if not args.skip_ceiling:
            raw = bench_raw_get_ack(min(args.ceiling_crashes, 5000))
            print(f"RabbitMQ, one client: {raw:.0f} basic_get+ack/s")
            rate = bench_dispatch_ceiling(args.ceiling_crashes, args.ceiling_workers, root)
            print(
                f"supervisor dispatch ceiling on RabbitMQ ({args.ceiling_workers} workers, "
                f"no processing, fs source, no destination): {rate:.0f} crashes/s "
                f"(target >= 1000)"
            )


if __name__ == "__main__":
    main()
