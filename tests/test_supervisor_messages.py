"""A worker that sends garbage or an unexpected message is killed; the supervisor carries on."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from procsupervisor import config, crashid
from procsupervisor.protocol import HEADER, encode
from procsupervisor.queues.base import Delivery
from procsupervisor.supervisor.arbiter import Supervisor
from procsupervisor.supervisor.worker_handle import Assignment, WorkerHandle, WorkerState


@pytest.fixture
def rig(tmp_path: Path):
    supervisor = Supervisor(config.load(None, data_dir=tmp_path, environ={}))
    child = subprocess.Popen(["sleep", "30"])
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    worker = WorkerHandle(
        index=0,
        pid=child.pid,
        sock=ours,
        generation=0,
        state=WorkerState.BUSY,
        assignment=Assignment(Delivery("normal", crashid.create()), supervisor.queue, 0.0),
    )
    supervisor.pool.handles[child.pid] = worker
    yield supervisor, worker, theirs, child
    child.kill()
    child.wait()
    theirs.close()
    ours.close()


@pytest.mark.parametrize(
    "frame",
    [
        HEADER.pack(3) + b"xyz",
        encode({"type": "result", "crash_id": crashid.create(), "outcome": "ok"}),
        encode({"type": "shutdown"}),
    ],
    ids=["not json", "result for another crash", "unknown type"],
)
def test_bad_messages_get_the_worker_killed(rig, frame: bytes) -> None:
    supervisor, worker, theirs, child = rig
    theirs.sendall(frame)
    supervisor._read_worker(child.pid)
    assert child.wait(timeout=5) == -9
    assert worker.kill_reason.startswith("protocol error")


def test_unknown_outcome_gets_the_worker_killed(rig) -> None:
    supervisor, worker, theirs, child = rig
    crash_id = worker.assignment.delivery.crash_id
    theirs.sendall(encode({"type": "result", "crash_id": crash_id, "outcome": "great"}))
    supervisor._read_worker(child.pid)
    assert child.wait(timeout=5) == -9
    assert "unknown outcome" in worker.kill_reason


def test_a_failing_queue_action_is_logged_not_fatal(rig, monkeypatch) -> None:
    supervisor, worker, theirs, child = rig
    delivery = worker.assignment.delivery

    def broken_ack(_delivery: Delivery) -> None:
        raise ConnectionError("broker gone")

    monkeypatch.setattr(supervisor.queue, "ack", broken_ack)
    theirs.sendall(encode({"type": "result", "crash_id": delivery.crash_id, "outcome": "ok"}))
    supervisor._read_worker(child.pid)
    assert worker.state == "idle" and worker.kill_reason is None
    assert supervisor.counters.queue("normal").acked == 0  # not counted: it will be redelivered
    assert supervisor.counters.processed == 1


def test_a_killed_worker_reporting_its_last_result_gets_no_new_crash(rig) -> None:
    supervisor, worker, theirs, child = rig
    crash_id = worker.assignment.delivery.crash_id
    supervisor.queue.publish("normal", crashid.create())
    worker.kill("deadline of 1s exceeded in stage save")
    theirs.sendall(encode({"type": "result", "crash_id": crash_id, "outcome": "ok"}))
    supervisor._read_worker(child.pid)
    assert worker.state == "idle" and supervisor.counters.processed == 1
    supervisor._dispatch()
    assert worker.assignment is None, "a crash was handed to a worker already killed"
    assert supervisor.queue.depths()["normal"] == 1
