"""The circuit breaker and the health monitor (docs/architecture.md §5), without services: a
crash that failed because a backend is down goes back without costing an attempt and stops
the pulling; probes with growing pauses decide when it resumes; a crash that only looks like
an outage cannot loop for ever."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procsupervisor import config, crashid
from procsupervisor.health import Health, HealthStatus, describe_cause
from procsupervisor.metrics import NullMetrics
from procsupervisor.protocol import encode
from procsupervisor.supervisor import prober as prober_module
from procsupervisor.supervisor.arbiter import Supervisor
from procsupervisor.supervisor.dispatcher import MAX_FREE_RELEASES
from procsupervisor.supervisor.health_monitor import HealthMonitor
from procsupervisor.supervisor.prober import Prober, ProbeResults
from procsupervisor.supervisor.worker_handle import WorkerHandle, WorkerState

POSTGRES = "destination postgres"


class FakeProber:
    """Records what the monitor asks to probe; answers with what the test queues."""

    def __init__(self) -> None:
        self.started: list[list[str] | None] = []
        self.answers: list[ProbeResults] = []
        self.busy = False

    def start(self, _config: Any, names: list[str] | None) -> None:
        self.started.append(names)
        self.busy = True

    def collect(self, _now: float) -> ProbeResults | None:
        if self.busy and self.answers:
            self.busy = False
            return self.answers.pop(0)
        return None

    def answer(self, healths: dict[str, Health], requested: list[str] | None) -> None:
        self.answers.append(ProbeResults(healths, requested))

    def close(self) -> None:
        pass


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Supervisor, WorkerHandle, socket.socket, FakeProber]]:
    loaded = config.load(None, data_dir=tmp_path, environ={},
                         overrides={"retry_delay_s": "0", "max_attempts": "3",
                                    "probe_max_interval_s": "2"})
    supervisor = Supervisor(loaded)
    fake = FakeProber()
    supervisor.health = HealthMonitor(loaded, NullMetrics(), prober=fake)  # type: ignore[arg-type]
    child = subprocess.Popen(["sleep", "30"])
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    worker = WorkerHandle(index=0, pid=child.pid, sock=ours, generation=0, state=WorkerState.IDLE)
    supervisor.pool.handles[child.pid] = worker
    yield supervisor, worker, theirs, fake
    child.kill()
    child.wait()
    theirs.close()
    ours.close()


def ready_messages(supervisor: Supervisor) -> list[dict[str, Any]]:
    folder = supervisor.config.data_dir / "queue" / "ready" / "normal"
    return [json.loads(path.read_text()) for path in sorted(folder.iterdir())]


def fail_for_an_outage(supervisor: Supervisor, worker: WorkerHandle, theirs: socket.socket) -> str:
    """Hand the worker the next crash and report it failed because PostgreSQL is down."""
    time.sleep(0.05)  # the fs queue lists its folder at most every 20 ms
    supervisor._dispatch()
    assert worker.assignment is not None, "nothing was dispatched"
    crash_id = worker.assignment.delivery.crash_id
    theirs.sendall(encode({
        "type": "result", "crash_id": crash_id, "outcome": "unavailable", "backend": POSTGRES,
        "reason": "destinations failed: postgres: OperationalError: connection refused",
    }))
    supervisor._read_worker(worker.pid)
    return crash_id


def test_an_outage_requeues_without_an_attempt_and_stops_pulling(rig) -> None:
    supervisor, worker, theirs, fake = rig
    first = crashid.create()
    supervisor.queue.publish("normal", first)
    fail_for_an_outage(supervisor, worker, theirs)
    assert [(m["body"], m["attempt"]) for m in ready_messages(supervisor)] == [(first, 1)]
    assert "OperationalError: connection refused" in ready_messages(supervisor)[0]["reason"]
    assert supervisor.counters.queue("normal").retried == 1
    assert supervisor.counters.queue("normal").dead_lettered == 0
    health = supervisor.status()["health"]
    assert health["state"] == "degraded" and health["pulling"] is False
    assert health["backends"][POSTGRES]["breaker"] == "open"
    assert "OperationalError: connection refused" in health["backends"][POSTGRES]["cause"]

    supervisor._dispatch()
    assert worker.assignment is None, "pulled while the breaker is open"
    supervisor.health.tick(time.monotonic())
    assert fake.started == [[POSTGRES]]  # probed at once: a blip must not stop work for long
    fake.answer({POSTGRES: Health.healthy()}, [POSTGRES])
    supervisor.health.tick(time.monotonic())
    assert supervisor.health.allow_pull()
    assert supervisor.status()["health"]["state"] == "healthy"
    time.sleep(0.05)
    supervisor._dispatch()
    assert worker.assignment is not None and worker.assignment.delivery.crash_id == first


def test_a_crash_that_keeps_looking_like_an_outage_starts_costing_attempts(rig) -> None:
    supervisor, worker, theirs, _fake = rig
    crash_id = crashid.create()
    supervisor.queue.publish("normal", crash_id)
    for _ in range(MAX_FREE_RELEASES):
        fail_for_an_outage(supervisor, worker, theirs)
        assert [m["attempt"] for m in ready_messages(supervisor)] == [1]
        supervisor.health.crash_succeeded(time.monotonic())  # probes find the backend fine
    fail_for_an_outage(supervisor, worker, theirs)
    assert [m["attempt"] for m in ready_messages(supervisor)] == [2]
    supervisor.health.crash_succeeded(time.monotonic())
    fail_for_an_outage(supervisor, worker, theirs)
    supervisor.health.crash_succeeded(time.monotonic())
    fail_for_an_outage(supervisor, worker, theirs)  # attempt 3 of 3: dead-lettered
    assert ready_messages(supervisor) == []
    assert supervisor.counters.queue("normal").dead_lettered == 1


def test_one_release_serves_an_outage_and_a_held_duplicate(
    rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`CrashQueue.release` has one meaning for both callers: back in the queue with the same
    attempt and the reason, after a delay (the outage's) or at once (a duplicate held behind a
    crash whose own queue action failed: issue 13 item 1 meets issue 10's no-cost requeue)."""
    supervisor, worker, theirs, _fake = rig
    child = subprocess.Popen(["sleep", "30"])
    other_sock, _other_theirs = socket.socketpair()
    second = WorkerHandle(index=1, pid=child.pid, sock=other_sock, generation=0,
                          state=WorkerState.IDLE)
    supervisor.pool.handles[child.pid] = second
    try:
        crash_id = crashid.create()
        supervisor.queue.publish("normal", crash_id)
        supervisor.queue.publish("normal", crash_id)  # queued twice
        time.sleep(0.05)
        supervisor._dispatch()
        held = worker.assignment or second.assignment
        assert held is not None and not (worker.assignment and second.assignment)
        assert sum(map(len, supervisor.dispatcher.held_duplicates.values())) == 1
        real_retry = supervisor.queue.retry
        calls: list[int] = []

        def retry_refused_once(delivery: Any, reason: str, delay_s: float) -> None:
            calls.append(delivery.attempt)
            if len(calls) == 1:
                raise OSError(28, "No space left on device")
            real_retry(delivery, reason, delay_s)

        monkeypatch.setattr(supervisor.queue, "retry", retry_refused_once)
        busy = worker if worker.assignment else second
        sock = theirs if busy is worker else _other_theirs
        sock.sendall(encode({"type": "result", "crash_id": crash_id, "outcome": "transient",
                             "reason": "storage hiccup"}))
        supervisor._read_worker(busy.pid)
        # The original's retry was refused; the duplicate went back through `release`: a retry
        # of the previous attempt, so the copy keeps attempt 1, with the reason.
        assert calls == [1, 0]
        assert supervisor.dispatcher.held_duplicates == {}
        (copy,) = ready_messages(supervisor)
        assert (copy["body"], copy["attempt"]) == (crash_id, 1)
        assert copy["reason"] == "its original's queue action failed"
    finally:
        child.kill()
        child.wait()
        other_sock.close()
        _other_theirs.close()


def test_probes_back_off_up_to_the_limit_and_close_the_breaker(tmp_path: Path) -> None:
    loaded = config.load(None, data_dir=tmp_path, environ={},
                         overrides={"probe_max_interval_s": "2"})
    fake = FakeProber()
    monitor = HealthMonitor(loaded, NullMetrics(), prober=fake)  # type: ignore[arg-type]
    now = 1000.0
    monitor.crash_unavailable("source s3", "source failed: EndpointConnectionError: x", now)
    assert not monitor.allow_pull()
    pauses = []
    for _ in range(5):
        monitor.tick(now)
        assert fake.started[-1] == ["source s3"]
        fake.answer({"source s3": Health.unreachable("EndpointConnectionError: x")}, ["source s3"])
        monitor.tick(now)
        state = monitor.backends["source s3"]
        assert state.next_probe_at is not None
        pauses.append(state.next_probe_at - now)
        monitor.tick(now)  # not due yet: no new probe
        assert not fake.busy
        now = state.next_probe_at
    assert pauses == [0.5, 1.0, 2.0, 2.0, 2.0]
    monitor.tick(now)
    fake.answer({"source s3": Health.healthy()}, ["source s3"])
    monitor.tick(now)
    assert monitor.allow_pull()
    assert monitor.backends["source s3"].times_opened == 1


def test_a_supplier_that_is_down_degrades_but_never_stops_pulling(tmp_path: Path) -> None:
    loaded = config.load(None, data_dir=tmp_path, environ={})
    fake = FakeProber()
    monitor = HealthMonitor(loaded, NullMetrics(), prober=fake)  # type: ignore[arg-type]
    symbols = "symbols http http://127.0.0.1:1"
    fake.answer({symbols: Health.unreachable("ConnectionRefusedError: 127.0.0.1:1"),
                 "source fs": Health.healthy()}, None)
    monitor.reconfigure(loaded, NullMetrics())  # a full probe, as after a reload
    monitor.tick(0.0)
    monitor.tick(0.0)
    assert fake.started == [None]
    assert monitor.allow_pull()

    class Queue:
        def health(self) -> Health:
            return Health.healthy()

    status = monitor.status(0.0, Queue())  # type: ignore[arg-type]
    assert status["state"] == "degraded" and status["pulling"] is True
    assert status["backends"][symbols]["breaker"] is None
    fake.answer({"source fs": Health.healthy()}, None)  # the supplier left the config
    monitor.reconfigure(loaded, NullMetrics())
    monitor.tick(1.0)
    monitor.tick(1.0)
    assert symbols not in monitor.backends
    assert monitor.status(1.0, Queue())["state"] == "healthy"  # type: ignore[arg-type]


def test_the_probe_child_reports_every_backend(tmp_path: Path) -> None:
    loaded = config.load(None, data_dir=tmp_path, environ={})
    results = Prober().run_now(loaded)
    assert results.failure is None
    assert results.healths == {"source fs": Health.healthy(), "destination fs": Health.healthy()}


def hang(*_args: Any) -> None:
    time.sleep(60)


def test_a_probe_that_hangs_is_killed_and_counts_as_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prober_module, "PROBE_ENTRY", f"{__name__}:hang")
    loaded = config.load(None, data_dir=tmp_path, environ={})
    started = time.monotonic()
    results = Prober(timeout_s=0.5).run_now(loaded, ["source fs"])
    assert time.monotonic() - started < 10
    assert results.failure == "probe timed out after 0.5s"
    assert results.healths == {"source fs": Health.unreachable("probe timed out after 0.5s")}


def test_a_misconfigured_backend_refuses_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ini = tmp_path / "bad.ini"
    ini.write_text(f"[destinations]\norder = fs\nfs_root = {blocker}/crashes\n")
    supervisor = Supervisor(config.load(ini, data_dir=tmp_path / "data", environ={}))
    with pytest.raises(Exception, match=f"destination fs: misconfigured: {blocker} is not a"):
        supervisor.run()


def test_causes_are_the_root_exception_on_one_line() -> None:
    try:
        try:
            raise OSError('connection to server at "127.0.0.1", port 5999 failed: Connection'
                          " refused\n\tIs the server running on that host?\n")
        except OSError as exc:
            raise RuntimeError("postgres unavailable after 2 attempts") from exc
    except RuntimeError as exc:
        described = describe_cause(exc)
    assert described == ('OSError: connection to server at "127.0.0.1", port 5999 failed:'
                         " Connection refused")
    assert len(describe_cause(ValueError("x" * 5000))) <= 240
    assert Health.from_json({"status": "bogus"}).status is HealthStatus.UNREACHABLE


def test_a_refused_broker_connection_names_the_address() -> None:
    from _backend_helpers import free_port

    from procsupervisor.queues.rabbitmq import RabbitMQQueue

    port = free_port()
    queue = RabbitMQQueue(f"amqp://guest:guest@127.0.0.1:{port}/%2F", socket_timeout_s=1)
    assert queue.health() == Health.healthy()  # nothing tried yet
    assert queue.probe() == Health.unreachable(f"ConnectionRefusedError: 127.0.0.1:{port}")
    assert queue.health() == Health.unreachable(f"ConnectionRefusedError: 127.0.0.1:{port}")
    assert queue.get("normal") is None
    queue.close()


def test_gauges_carry_the_health_and_each_breaker() -> None:
    from procsupervisor.supervisor.housekeeping import gauges

    status = {
        "health": {
            "state": "degraded",
            "pulling": False,
            "backends": {
                "queue fs": {"status": "healthy", "breaker": None},
                "destination postgres": {"status": "unreachable", "breaker": "open"},
                "source s3": {"status": "healthy", "breaker": "closed"},
            },
        }
    }
    found = gauges(status)
    assert found["supervisor.degraded"] == 1
    assert found["supervisor.pulling"] == 0
    assert found["supervisor.breaker_open.destination_postgres"] == 1
    assert found["supervisor.breaker_open.source_s3"] == 0
    assert not any("queue_fs" in name for name in found)
