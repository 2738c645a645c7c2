"""Outages cost no attempts (issue 10, docs/architecture.md §5): 300 crashes in flight while
PostgreSQL, then the S3 source, is unreachable for 3 x max_attempts x retry_delay_s, through a
TCP proxy this test stops and starts (the shared servers are never touched). Nothing may be
dead-lettered or lost, every crash must be processed once the backend is back, and the breaker
must show open, then closed, in status and statsd. And the other side of the line: malformed
raw crash JSON is the crash's own fault and is dead-lettered on its first attempt.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _backend_helpers import MotoProcess, Stack, StatsdListener, TcpProxy, new_crash_id
from _core_helpers import PYTHON, ROOT, SupervisorProcess, acked_total, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CRASHES = 300
MAX_ATTEMPTS = 3
RETRY_DELAY_S = 1.0
OUTAGE_S = 3 * MAX_ATTEMPTS * RETRY_DELAY_S


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    yield server
    server.stop()


@pytest.fixture
def pg_proxy(postgres_dsn: str) -> Iterator[TcpProxy]:
    params = dict(p.split("=", 1) for p in postgres_dsn.split())
    proxy = TcpProxy(int(params.get("port", "5432")), params.get("host", "127.0.0.1")).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_proxy(moto_s3: MotoProcess) -> Iterator[TcpProxy]:
    proxy = TcpProxy(moto_s3.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def stack(
    rabbitmq_url: str, postgres_dsn: str, pg_proxy: TcpProxy, s3_proxy: TcpProxy
) -> Iterator[Stack]:
    """Both PostgreSQL and S3 reached through proxies the test can take down."""
    params = dict(p.split("=", 1) for p in postgres_dsn.split())
    params.update(host="127.0.0.1", port=str(pg_proxy.port))
    built = Stack(
        rabbitmq_url=rabbitmq_url,
        postgres_dsn=" ".join(f"{k}={v}" for k, v in params.items()),
        admin_dsn=postgres_dsn,
        s3_endpoint=f"http://127.0.0.1:{s3_proxy.port}",
        es_url="http://127.0.0.1:9",  # not in the destinations of these tests
    )
    built.prepare()
    yield built
    built.cleanup()


def start_supervisor(stack: Stack, root: Path, statsd_port: int | None = None) -> SupervisorProcess:
    data_dir = root / "host"
    data_dir.mkdir(parents=True)
    text = stack.config_text(
        data_dir, workers=2, max_attempts=MAX_ATTEMPTS, retry_delay_s=RETRY_DELAY_S,
        order="postgres", statsd_port=statsd_port,
    )
    # Probe a backend that is down at least every second, so recovery is seen quickly.
    text = text.replace("[supervisor]\n", "[supervisor]\nprobe_max_interval_s = 1\n", 1)
    config_path = root / "host.ini"
    config_path.write_text(text)
    return SupervisorProcess(config_path, data_dir).start(timeout=60)


def cli_status(supervisor: SupervisorProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(supervisor.config_path), "status"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )


def breaker(status: dict[str, Any], backend: str) -> str | None:
    return status["health"]["backends"].get(backend, {}).get("breaker")


def dead_lettered(status: dict[str, Any]) -> int:
    return sum(q["dead_lettered"] for q in status["queues"].values())


def run_outage(
    stack: Stack, proxy: TcpProxy, backend: str, tmp_path: Path, statsd: StatsdListener | None
) -> dict[str, Any]:
    """Seed, start, take `backend` down once processing is under way, bring it back after
    OUTAGE_S, wait for every crash; returns the figures and what status showed."""
    ids = stack.seed(CRASHES)
    supervisor = start_supervisor(stack, tmp_path, statsd.port if statsd else None)
    figures: dict[str, Any] = {"crashes": CRASHES, "outage_s": OUTAGE_S}
    try:
        supervisor.wait_for(lambda s: acked_total(s) >= 10, 60, what="processing under way")
        proxy.stop()
        down_at = time.monotonic()
        opened = supervisor.wait_for(lambda s: breaker(s, backend) == "open", 30,
                                     what=f"breaker open for {backend}")
        figures["in_flight_at_outage"] = CRASHES - acked_total(opened)
        assert opened["health"]["state"] == "degraded"
        assert opened["health"]["pulling"] is False
        shown = cli_status(supervisor)
        assert shown.returncode == 3, shown.stdout + shown.stderr
        assert f"{backend}: unreachable  breaker open" in shown.stdout, shown.stdout
        assert "health: degraded  (pulling stopped)" in shown.stdout, shown.stdout
        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        during = supervisor.status()
        assert breaker(during, backend) == "open"
        assert dead_lettered(during) == 0
        proxy.start()
        up_at = time.monotonic()
        done = supervisor.wait_for(lambda s: acked_total(s) >= CRASHES, 120, what="every crash")
        figures["drain_s"] = round(time.monotonic() - up_at, 1)
        assert breaker(done, backend) == "closed"
        assert done["health"]["state"] == "healthy"
        shown = cli_status(supervisor)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "health: healthy" in shown.stdout
        # The probes ran in throwaway children: the supervisor never loaded a storage client
        # (psycopg2's C extension shows in a process's memory map once imported).
        worker_pid = done["workers"][0]["pid"]
        assert "_psycopg" in Path(f"/proc/{worker_pid}/maps").read_text()
        assert "_psycopg" not in Path(f"/proc/{supervisor.pid}/maps").read_text()
        log = supervisor.log(None)
    finally:
        supervisor.stop()
    figures["dead_lettered"] = dead_lettered(done)
    figures["lost"] = len(set(ids) - stack.pg_ids())
    figures["released"] = log.count("attempt_counted=False")
    assert figures["dead_lettered"] == 0
    assert figures["lost"] == 0
    assert acked_total(done) == CRASHES
    assert stack.queue_depths() == {"priority": 0, "normal": 0, "reprocessing": 0, "deadletter": 0}
    assert "breaker open: pulling stopped" in log
    assert "breaker closed: pulling resumed" in log
    # Only the crashes held when it went down went back to the queue, and at no cost.
    assert 1 <= figures["released"] <= 2 * 2, log[-3000:]
    print(f"\noutage figures ({backend}): {figures}")
    return figures


def test_postgres_outage_costs_no_attempts(
    stack: Stack, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    statsd = StatsdListener()
    try:
        run_outage(stack, pg_proxy, "destination postgres", tmp_path, statsd)
    finally:
        statsd.close()
    gauges = [line for line in statsd.lines if line.startswith("socorro.supervisor.breaker.open:")]
    tags = "|#role:destination,backend:postgres"
    assert gauges[0] == f"socorro.supervisor.breaker.open:1|g{tags}", gauges
    assert gauges[-1] == f"socorro.supervisor.breaker.open:0|g{tags}", gauges


def test_s3_source_outage_costs_no_attempts(
    stack: Stack, s3_proxy: TcpProxy, tmp_path: Path
) -> None:
    run_outage(stack, s3_proxy, "source s3", tmp_path, None)


def test_malformed_json_is_dead_lettered_on_its_first_attempt(
    stack: Stack, tmp_path: Path
) -> None:
    import pika

    broken = new_crash_id()
    stack.s3().client.put_object(
        Bucket=stack.bucket, Key=stack.s3().raw_crash_key(broken), Body=b'{"ProductName": "Fi'
    )
    good = stack.seed(3)
    publisher = stack.queue()
    publisher.publish("normal", broken)
    publisher.close()
    supervisor = start_supervisor(stack, tmp_path)
    try:
        status = supervisor.wait_for(
            lambda s: acked_total(s) >= 3 and dead_lettered(s) >= 1, 60, what="3 acks, 1 dead"
        )
    finally:
        supervisor.stop()
    assert sum(q["retried"] for q in status["queues"].values()) == 0
    assert stack.pg_ids() == set(good)
    connection = pika.BlockingConnection(pika.URLParameters(stack.rabbitmq_url))
    try:
        method, properties, body = connection.channel().basic_get(
            stack.queue_name("deadletter"), auto_ack=True
        )
    finally:
        connection.close()
    assert method is not None and body.decode() == broken
    headers = properties.headers
    assert headers["x-procsupervisor-attempt"] == 1
    reason = headers["x-procsupervisor-reason"]
    assert reason.startswith("unreadable crash: s3://"), reason
    assert "is not valid JSON: Unterminated string starting at: line 1 column 17" in reason
