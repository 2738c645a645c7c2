"""A real supervisor in a subprocess: processing, status, control socket, reload, scaling, stop."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path

import pytest
from _core_helpers import (
    SupervisorProcess,
    acked_total,
    processed_crash,
    submit,
    write_config,
)

from procsupervisor.supervisor.control import request
from procsupervisor.workers.processor import validate_processed_crash

pytestmark = pytest.mark.slow

WORKER_FIELDS = {
    "index",
    "pid",
    "state",
    "crash_id",
    "busy_s",
    "processed",
    "failed",
    "restarts",
    "rss_bytes",
}


@pytest.fixture
def setup(tmp_path: Path):
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=2)
    supervisor = SupervisorProcess(config_path, data_dir)
    yield config_path, data_dir, supervisor
    supervisor.stop()


def test_processes_crashes_and_reports_status(setup) -> None:
    config_path, data_dir, supervisor = setup
    ids = [submit(config_path, queue=q) for q in ("priority", "normal", "normal", "reprocessing")]
    supervisor.start()
    status = supervisor.wait_for(lambda s: acked_total(s) == 4, what="4 crashes acked")
    for cid in ids:
        processed = processed_crash(data_dir, cid)
        validate_processed_crash(processed)
        assert processed["uuid"] == cid

    assert status["pid"] == supervisor.pid
    assert status["config"] == str(config_path)
    assert status["reloads"] == 0 and status["target_workers"] == 2
    assert status["uptime_s"] > 0
    assert len(status["workers"]) == 2
    for worker in status["workers"]:
        assert set(worker) >= WORKER_FIELDS
        assert worker["state"] == "idle" and worker["rss_bytes"] > 0
    assert sum(w["processed"] for w in status["workers"]) == 4
    assert status["queues"]["normal"] == {"pulled": 2, "acked": 2, "retried": 0, "dead_lettered": 0}
    assert status["totals"]["processed"] == 4 and status["totals"]["failed"] == 0
    assert {"processed", "failed", "retried", "dead_lettered", "per_s"} <= set(status["totals"])
    assert "symbol_cache" in status


def test_control_socket_is_private_and_refuses_junk(setup) -> None:
    _, data_dir, supervisor = setup
    supervisor.start()
    sock = data_dir / "control.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    junk = request(sock, "format-disk")
    assert junk["ok"] is False and "unknown command" in junk["error"]
    bad_scale = request(sock, "scale", workers="many")
    assert bad_scale["ok"] is False and "integer" in bad_scale["error"]
    assert supervisor.status()["target_workers"] == 2


def test_status_and_scale_through_the_cli(setup) -> None:
    import subprocess

    from _core_helpers import PYTHON, ROOT, subprocess_env

    config_path, _, supervisor = setup
    supervisor.start()

    def cli(*args: str) -> str:
        return subprocess.run(
            [PYTHON, "-m", "procsupervisor", "--config", str(config_path), *args],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "target workers: 3" in cli("scale", "3")
    supervisor.wait_for(
        lambda s: sum(w["state"] == "idle" for w in s["workers"]) == 3, what="3 idle workers"
    )
    table = cli("status")
    assert "queue" in table and "priority" in table and "idx" in table
    assert '"target_workers": 3' in cli("status", "--json")


def test_start_workers_flag_outlives_reloads_and_cli_stop_ends_it(tmp_path: Path) -> None:
    import subprocess

    from _core_helpers import PYTHON, ROOT, subprocess_env

    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=2)
    supervisor = SupervisorProcess(config_path, data_dir, start_args=("--workers", "3"))
    try:
        supervisor.start()
        assert supervisor.status()["target_workers"] == 3
        assert supervisor.request("reload")["ok"] is True
        status = supervisor.status()
        assert status["reloads"] == 1 and status["target_workers"] == 3
        stopped = subprocess.run(
            [PYTHON, "-m", "procsupervisor", "--config", str(config_path), "stop"],
            cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopping supervisor {supervisor.pid}" in stopped.stdout
        assert supervisor.wait_exit() == 0
        assert not (data_dir / "control.sock").exists()
    finally:
        supervisor.stop()


def test_hup_reload_applies_a_new_worker_count(setup) -> None:
    config_path, data_dir, supervisor = setup
    supervisor.start()
    old_pids = {w["pid"] for w in supervisor.status()["workers"]}
    write_config(config_path, data_dir, workers=3)
    supervisor.signal(signal.SIGHUP)
    status = supervisor.wait_for(
        lambda s: (
            s["reloads"] == 1
            and len(s["workers"]) == 3
            and all(w["state"] == "idle" for w in s["workers"])
        ),
        what="3 new workers",
    )
    assert status["target_workers"] == 3
    assert not old_pids & {w["pid"] for w in status["workers"]}, "workers were replaced"
    cid = submit(config_path)
    supervisor.wait_for(lambda s: acked_total(s) == 1, what="crash processed after reload")
    assert processed_crash(data_dir, cid)["uuid"] == cid


def test_invalid_config_on_reload_keeps_the_old_one_running(setup) -> None:
    config_path, data_dir, supervisor = setup
    supervisor.start()
    pids = {w["pid"] for w in supervisor.status()["workers"]}
    config_path.write_text("[supervisor]\nworkers = plenty\n")
    reply = supervisor.request("reload")
    assert reply["ok"] is False and "key 'workers'" in reply["error"]
    supervisor.signal(signal.SIGHUP)
    status = supervisor.wait_for(lambda s: s["last_reload_error"], what="reload error")
    assert status["reloads"] == 0 and status["target_workers"] == 2
    assert {w["pid"] for w in status["workers"]} == pids
    cid = submit(write_config(config_path.with_name("copy.ini"), data_dir))
    supervisor.wait_for(lambda s: acked_total(s) == 1, what="still processing")
    assert processed_crash(data_dir, cid)["uuid"] == cid


def test_cli_still_reaches_a_supervisor_whose_config_file_broke(setup) -> None:
    import subprocess

    from _core_helpers import PYTHON, ROOT, subprocess_env

    config_path, data_dir, supervisor = setup
    supervisor.start()
    broken, edits = re.subn(r"(?m)^deadline_s = .*$", "deadline_s = soon", config_path.read_text())
    assert edits == 1
    config_path.write_text(broken)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "procsupervisor", "--config", str(config_path), *args],
            cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)

    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pid"] == supervisor.pid
    assert "warning:" in status.stderr and "key 'deadline_s'" in status.stderr
    reload = cli("reload")  # the supervisor judges the file, reports it and keeps running
    assert reload.returncode == 1 and "key 'deadline_s'" in reload.stderr
    assert supervisor.status()["last_reload_error"]
    stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert supervisor.wait_exit() == 0


def test_ttin_ttou_change_the_worker_count(setup) -> None:
    _, _, supervisor = setup
    supervisor.start()
    supervisor.signal(signal.SIGTTIN)
    supervisor.wait_for(lambda s: s["target_workers"] == 3 and len(s["workers"]) == 3, what="TTIN")
    # Unix does not queue repeats of a pending signal: send the second after the first acted.
    supervisor.signal(signal.SIGTTOU)
    supervisor.wait_for(
        lambda s: s["target_workers"] == 2 and len(s["workers"]) == 2, what="TTOU"
    )
    supervisor.signal(signal.SIGTTOU)
    supervisor.wait_for(
        lambda s: s["target_workers"] == 1 and len(s["workers"]) == 1, what="TTOU again"
    )


def test_graceful_stop_finishes_in_flight_crashes(setup, tmp_path: Path) -> None:
    config_path, data_dir, supervisor = setup
    hold = tmp_path / "hold"
    hold.mkdir()
    write_config(config_path, data_dir, processor_options={"hold_dir": str(hold)})
    supervisor.start()
    cid = submit(config_path)
    (hold / cid).touch()
    waiting = submit(config_path)
    supervisor.wait_for(
        lambda s: any(w["crash_id"] == cid for w in s["workers"]), what="crash in flight"
    )
    supervisor.signal(signal.SIGTERM)
    supervisor.wait_for(lambda s: s["draining"], what="draining")
    (hold / cid).unlink()
    assert supervisor.wait_exit() == 0
    assert processed_crash(data_dir, cid)["uuid"] == cid
    # The crash that was waiting may or may not have started before TERM; if it did not, it is
    # still queued, never lost.
    from procsupervisor.queues.fs import FSQueue

    queue = FSQueue(data_dir / "queue")
    done = (data_dir / "crashes" / "v1" / "processed_crash" / waiting).exists()
    assert done or queue.depths()["normal"] == 1
    assert not os.listdir(data_dir / "queue" / "inflight" / "normal")
    assert not (data_dir / "control.sock").exists()


def test_a_second_supervisor_on_the_same_data_dir_is_refused(setup) -> None:
    import subprocess

    from _core_helpers import PYTHON, ROOT, subprocess_env

    config_path, _, supervisor = setup
    supervisor.start()
    second = subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(config_path), "start"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert "another supervisor is running" in second.stderr
    assert supervisor.status()["pid"] == supervisor.pid


def test_reload_applies_deadline_weights_and_log_level(setup) -> None:
    config_path, data_dir, supervisor = setup
    write_config(config_path, data_dir, workers=1, processor_options={"hang_marker": "TestHang"})
    supervisor.start()
    before = supervisor.status()
    assert before["deadline_s"] == 30 and before["log_level"] == "INFO"
    write_config(config_path, data_dir, workers=1, deadline_s=0.5, max_attempts=1,
                 weights="priority:3, normal:2", processor_options={"hang_marker": "TestHang"})
    config_path.write_text(config_path.read_text().replace("level = INFO", "level = WARNING"))
    assert supervisor.request("reload")["ok"] is True
    status = supervisor.status()
    assert status["deadline_s"] == 0.5 and status["log_level"] == "WARNING"
    assert status["queue_weights"] == {"priority": 3, "normal": 2, "reprocessing": 1}
    hung = submit(config_path, TestHang=True)
    status = supervisor.wait_for(lambda s: s["totals"]["dead_lettered"] == 1, what="killed")
    from _core_helpers import dead_letters

    [letter] = dead_letters(data_dir)
    assert letter["body"] == hung and "deadline of 0.5s exceeded" in letter["reason"]
    assert 'msg="crash done"' not in supervisor.log(tail=None), "INFO lines are off"


def test_workers_hold_nothing_of_the_supervisor(setup) -> None:
    """After the fork a worker keeps only stdio and its own pipe: no control socket, no lock."""
    _, _, supervisor = setup
    supervisor.start()
    for worker in supervisor.status()["workers"]:
        fd_dir = Path(f"/proc/{worker['pid']}/fd")
        targets = [os.readlink(fd_dir / name) for name in os.listdir(fd_dir)]
        assert sum(t.startswith("socket:") for t in targets) == 1, targets
        assert not any(t.endswith(("supervisor.lock", "control.sock")) for t in targets)
        title = Path(f"/proc/{worker['pid']}/cmdline").read_bytes().decode(errors="replace")
        assert title.startswith(f"procsupervisor: worker {worker['index']} [idle]")
    title = Path(f"/proc/{supervisor.pid}/cmdline").read_bytes().decode(errors="replace")
    assert title.startswith("procsupervisor: supervisor")
