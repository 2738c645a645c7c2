"""Issue 13: 300 crashes through the real RabbitMQ while the test keeps breaking things: it
closes the supervisor's broker connection (`rabbitmqctl close_connection`, that connection
only), SIGKILLs busy workers, SIGKILLs the supervisor or stops it with `stop --fast`, and
restarts it. Every crash must end processed or dead-lettered with a reason: lost must be 0.
The figures (lost, processed twice, dead-lettered, actions) are printed and written to
`chaos.json` in the test's folder."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from _core_helpers import SupervisorProcess, make_raw_crash, write_config
from _rabbit_helpers import RabbitQueues, close_supervisor_connection, require_rabbitmqctl

from procsupervisor import crashid
from procsupervisor.metrics import NullMetrics
from procsupervisor.queues.rabbitmq import RabbitMQQueue
from procsupervisor.storage.fs import FSCrashStorage

pytestmark = [pytest.mark.slow, pytest.mark.services]

CRASHES = 300
WAVES = 12
ACTIONS = ("close connection", "kill worker", "close then kill supervisor", "kill worker",
           "close connection", "stop --fast")


@pytest.fixture
def queues(rabbitmq_url: str):
    require_rabbitmqctl()
    found = RabbitQueues.unique(rabbitmq_url, "pstest-chaos")
    yield found
    found.delete()


def kill_a_busy_worker(supervisor: SupervisorProcess) -> bool:
    busy = [w for w in supervisor.status()["workers"] if w["state"] == "busy"]
    if not busy:
        return False
    try:
        os.kill(busy[0]["pid"], signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def test_nothing_is_lost_under_chaos(queues: RabbitQueues, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    record = tmp_path / "processed.txt"
    config_path = write_config(
        tmp_path / "sup.ini", data_dir, workers=4, max_attempts=5, retry_delay_s=0.05,
        graceful_timeout_s=5,
        processor_options={"record_file": str(record)},
        queue_options=queues.config_lines())
    storage = FSCrashStorage(data_dir / "crashes")
    publisher = RabbitMQQueue.from_options(
        {"url": queues.url, **{f"{q}_queue": f"{queues.prefix}.{q}"
                               for q in ("priority", "normal", "reprocessing")},
         "deadletter_queue": f"{queues.prefix}.deadletter",
         "retry_queue": f"{queues.prefix}.retry"},
        data_dir=data_dir, metrics=NullMetrics())
    ids = [crashid.create() for _ in range(CRASHES)]
    for number, crash_id in enumerate(ids):
        # One crash in ten is slow, so some are always in a worker when the broker connection
        # is closed: their redelivered copies reach idle workers while they are in flight.
        raw = make_raw_crash(uuid=crash_id, TestSleepMs=1500 if number % 10 == 5 else 20)
        storage.save_raw_crash(raw, {"upload_file_minidump": b"MDMP"}, crash_id)
    supervisors = [SupervisorProcess(config_path, data_dir).start()]
    actions: Counter[str] = Counter()
    started = time.monotonic()
    try:
        per_wave = CRASHES // WAVES
        for wave in range(WAVES):
            for crash_id in ids[wave * per_wave:(wave + 1) * per_wave]:
                publisher.publish("normal", crash_id)
            current = supervisors[-1]
            current.wait_for(lambda s: any(w["state"] == "busy" for w in s["workers"]), 30,
                             what="crashes in the workers")
            action = ACTIONS[wave % len(ACTIONS)]
            if action == "kill worker":
                actions[action] += kill_a_busy_worker(current)
                continue
            if action.startswith("close") and close_supervisor_connection(current.pid):
                actions["close connection"] += 1
                time.sleep(0.5)  # the broker redelivers what was in flight
            if action.endswith("kill supervisor"):
                current.signal(signal.SIGKILL)
            elif action == "stop --fast":
                current.request("stop", fast=True)
            else:
                continue
            current.wait_exit(30)
            actions[action.removeprefix("close then ")] += 1
            supervisors.append(SupervisorProcess(config_path, data_dir).start())
        processed_dir = data_dir / "crashes" / "v1" / "processed_crash"

        def settled() -> bool:
            done = {p.name for p in processed_dir.iterdir()} if processed_dir.is_dir() else set()
            if len(done & set(ids)) == CRASHES:
                return True
            dead = {body for body, _ in queues.dead_letters()}
            return len((done | dead) & set(ids)) == CRASHES

        deadline = time.monotonic() + 45
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.5)
        last = supervisors[-1]
        last.wait_for(lambda s: not any(w["crash_id"] for w in s["workers"]), 30,
                      what="nothing in flight")
    finally:
        publisher.close()
        for supervisor in supervisors:
            supervisor.stop()
    processed = {p.name for p in processed_dir.iterdir()} & set(ids)
    letters = {body: headers for body, headers in queues.dead_letters() if body in ids}
    lost = sorted(set(ids) - processed - set(letters))
    runs = Counter(record.read_text().split())
    figures = {
        "crashes": CRASHES,
        "processed": len(processed),
        "dead_lettered": len(letters),
        "lost": len(lost),
        "processed_twice": sum(1 for crash_id in ids if runs[crash_id] > 1),
        "extra_processings": sum(max(0, runs[crash_id] - 1) for crash_id in ids),
        "actions": dict(actions),
        "supervisor_starts": len(supervisors),
        "seconds": round(time.monotonic() - started, 1),
    }
    (tmp_path / "chaos.json").write_text(json.dumps(figures, indent=2))
    print("chaos figures:", json.dumps(figures))
    assert not lost, f"lost {len(lost)}: {lost[:5]}"
    assert all(headers.get("x-procsupervisor-reason") for headers in letters.values())
    assert actions["close connection"] >= 2 and actions["kill supervisor"] >= 1
    assert actions["stop --fast"] >= 1
