"""Throughput on the production backends, printed as figures (run by hand, not in CI).

1. End to end: RabbitMQ (this machine) + S3 (moto server) + PostgreSQL (this machine) +
   Elasticsearch (the ES-protocol server in tests/), the real processor on small synthetic
   minidumps, `procsupervisor start` with N workers. Crashes are stored and queued first; the
   clock runs while the supervisor drains them.
2. Dispatch ceiling on RabbitMQ: the same supervisor with a trivial processor, the fs source
   and no destination, so the figure is what the supervisor, RabbitMQ (basic_get + ack per
   crash) and the worker pipes sustain. Also the raw get+ack rate of one RabbitMQ client, the
   ceiling of any single-connection consumer.

Throughput is taken in steady state, between 10% and 90% of the crashes acked, from the
supervisor's counters polled over its control socket.

    .venv/bin/python scripts/bench_e2e.py [--crashes 1000] [--workers 2]
        [--ceiling-crashes 5000] [--ceiling-workers 4] [--skip-e2e] [--skip-ceiling]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _backend_helpers import MotoProcess, Stack, new_crash_id, unique_name  # noqa: E402
from _core_helpers import SupervisorProcess, acked_total  # noqa: E402
from es_server import ESServer  # noqa: E402

from procsupervisor.storage.fs import FSCrashStorage  # noqa: E402

AMQP_URL = os.environ.get("PROCSUPERVISOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_DSN = os.environ.get(
    "PROCSUPERVISOR_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
POLL_S = 0.05


def steady_rate(supervisor: SupervisorProcess, total: int, timeout_s: float) -> float:
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
    moto = MotoProcess().start()
    es = ESServer().start()
    stack = Stack(
        rabbitmq_url=AMQP_URL,
        postgres_dsn=PG_DSN,
        admin_dsn=PG_DSN,
        s3_endpoint=moto.endpoint_url,
        es_url=es.url,
    )
    supervisor = None
    try:
        stack.prepare()
        data_dir = root / "e2e"
        data_dir.mkdir()
        config = root / "e2e.ini"
        config.write_text(stack.config_text(data_dir, workers=workers))
        supervisor = SupervisorProcess(config, data_dir).start(timeout=60)
        # Stored and queued while the supervisor is up (its workers idle); the first 10% of
        # acks are excluded from the rate, so seeding does not count.
        ids = stack.seed(crashes)
        rate = steady_rate(supervisor, crashes, timeout_s=600)
        supervisor.wait_for(lambda s: acked_total(s) >= crashes, 300, what="every crash acked")
        medians = stage_medians(supervisor.log_path.read_text(errors="replace"))
        landed = len(stack.pg_ids())
    finally:
        if supervisor is not None:
            supervisor.stop()
        stack.cleanup()
        es.stop()
        moto.stop()
    print(f"end to end (RabbitMQ + S3/moto + PostgreSQL + ES-protocol server), {workers} workers")
    print(f"  crashes: {len(ids)}, in PostgreSQL: {landed}")
    print(f"  steady throughput: {rate:.1f} crashes/s")
    per_crash = ", ".join(f"{k} {v:.1f}" for k, v in medians.items())
    print(f"  median per crash (ms): {per_crash}")


def bench_raw_get_ack(count: int) -> float:
    """One client: publish `count`, then basic_get + basic_ack them all; gets+acks per second."""
    stack = Stack(rabbitmq_url=AMQP_URL, postgres_dsn="", admin_dsn="", s3_endpoint="", es_url="")
    queue = stack.queue()
    try:
        for _ in range(count):
            queue.publish("normal", new_crash_id())
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
    stack = Stack(rabbitmq_url=AMQP_URL, postgres_dsn="", admin_dsn="", s3_endpoint="", es_url="")
    data_dir = root / "ceiling"
    data_dir.mkdir()
    storage = FSCrashStorage(data_dir / "crashes")
    ids = [new_crash_id() for _ in range(crashes)]
    for crash_id in ids:
        storage.save_raw_crash({"uuid": crash_id, "ProductName": "Bench"}, {}, crash_id)
    text = stack.config_text(
        data_dir,
        workers=workers,
        order="",
        processor="_core_helpers:HookedProcessor",
        processor_options="trivial = 1\n",
    )
    # fs source for the ceiling: S3 reads would measure moto, not the supervisor.
    text = re.sub(r"\[source\]\n(?:[^\[].*\n)*", "[source]\nbackend = fs\n", text)
    config = root / "ceiling.ini"
    config.write_text(text)
    # Queued before the supervisor starts: it drains faster than one client publishes.
    publisher = stack.queue()
    for crash_id in ids:
        publisher.publish("normal", crash_id)
    publisher.close()
    supervisor = SupervisorProcess(config, data_dir).start(timeout=60)
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
    print(f"host: {os.cpu_count()} CPUs; run id {unique_name('bench')}")
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
                f"trivial processor, fs source, no destination): {rate:.0f} crashes/s "
                f"(target >= 1000)"
            )


if __name__ == "__main__":
    main()
