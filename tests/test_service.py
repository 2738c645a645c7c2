"""Running as a service: pidfile, log file and JSON logs, `stop --wait`, systemd readiness and
watchdog over a real datagram socket, privilege drop to a real user, the unit file; and
`scale` / counters across reloads."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _core_helpers import (
    PYTHON,
    ROOT,
    SupervisorProcess,
    acked_total,
    processed_crash,
    submit,
    subprocess_env,
    write_config,
)

from procsupervisor.service import process_gone

pytestmark = pytest.mark.slow

UNIT_FILE = ROOT / "scripts" / "procsupervisor.service"


def cli(config_path: Path, *args: str, timeout: float = 60, **kwargs: object
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(config_path), *args],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )


def test_pidfile_json_log_file_and_stop_wait(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "svc.ini", data_dir, workers=1)
    pidfile, log_file = tmp_path / "run" / "ps.pid", tmp_path / "logs" / "ps.log"
    log_file.parent.mkdir()
    supervisor = SupervisorProcess(config_path, data_dir, start_args=(
        "--pidfile", str(pidfile), "--log-file", str(log_file), "--log-format", "json"))
    try:
        supervisor.start()
        assert pidfile.read_text() == f"{supervisor.pid}\n"
        crash_id = submit(config_path)
        supervisor.wait_for(lambda s: acked_total(s) == 1, what="crash processed")
        stopped = cli(config_path, "stop", "--wait")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.splitlines() == [
            f"stopping supervisor {supervisor.pid}", f"supervisor {supervisor.pid} stopped"]
        assert process_gone(supervisor.pid)  # a zombie until we reap it: it has exited
        assert not pidfile.exists() and not (data_dir / "control.sock").exists()
        assert supervisor.wait_exit(10) == 0
    finally:
        supervisor.stop()
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    by_msg = {event["msg"]: event for event in events}
    assert by_msg["supervisor started"]["pid"] == supervisor.pid
    assert by_msg["crash done"]["crash_id"] == crash_id
    assert by_msg["crash done"]["outcome"] == "ok" and "supervisor stopped" in by_msg
    assert supervisor.log(None).strip() == ""  # nothing left on stderr


def test_stop_wait_gives_up_after_its_timeout(tmp_path: Path) -> None:
    data_dir, hold_dir = tmp_path / "data", tmp_path / "hold"
    hold_dir.mkdir()
    config_path = write_config(tmp_path / "svc.ini", data_dir, workers=1,
                               graceful_timeout_s=60,
                               processor_options={"hold_dir": str(hold_dir)})
    supervisor = SupervisorProcess(config_path, data_dir)
    try:
        supervisor.start()
        crash_id = submit(config_path)
        (hold_dir / crash_id).touch()
        supervisor.wait_for(lambda s: s["workers"][0]["crash_id"] == crash_id, what="busy")
        stopped = cli(config_path, "stop", "--wait", "--timeout", "0.5")
        assert stopped.returncode == 1
        assert stopped.stderr.strip() == (
            f"Error: supervisor {supervisor.pid} is still running after 0.5s")
        (hold_dir / crash_id).unlink()  # the crash finishes, then the graceful stop ends
        assert supervisor.wait_exit(60) == 0
    finally:
        supervisor.stop()
    assert processed_crash(data_dir, crash_id)["uuid"] == crash_id


def test_scale_and_counters_survive_reloads_unless_the_file_changes_workers(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "svc.ini", data_dir, workers=2)
    supervisor = SupervisorProcess(config_path, data_dir)
    try:
        supervisor.start()
        for _ in range(3):
            submit(config_path)
        supervisor.wait_for(lambda s: acked_total(s) == 3, what="3 processed")
        assert supervisor.request("scale", workers=3)["ok"]
        assert supervisor.request("reload")["ok"]  # the file still says 2: the scale stays
        status = supervisor.wait_for(
            lambda s: s["reloads"] == 1 and len(s["workers"]) == 3
            and all(w["state"] == "idle" and w["generation"] == 1 for w in s["workers"]),
            what="3 workers of the new generation")
        assert status["target_workers"] == 3
        assert sum(w["processed"] for w in status["workers"]) == 3  # per slot, not reset
        assert status["totals"]["processed"] == 3 and acked_total(status) == 3

        write_config(config_path, data_dir, workers=1)  # the file changes workers: it wins
        assert supervisor.request("reload")["ok"]
        status = supervisor.wait_for(lambda s: s["reloads"] == 2 and len(s["workers"]) == 1,
                                     what="1 worker")
        assert status["target_workers"] == 1 and status["totals"]["processed"] == 3
    finally:
        supervisor.stop()


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    folder = Path(tempfile.mkdtemp(prefix="ps-notify-"))  # short: sun_path is 108 bytes
    path = str(folder / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield sock, path
    sock.close()
    shutil.rmtree(folder)


def _messages(sock: socket.socket, until: str, timeout_s: float = 60) -> list[dict[str, str]]:
    """Datagrams as dicts, up to and including the first one carrying `until` (KEY=value)."""
    key, _, value = until.partition("=")
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            continue
        message = dict(line.split("=", 1) for line in data.splitlines())
        found.append(message)
        if message.get(key) == value:
            return found
    raise AssertionError(f"no {until} within {timeout_s}s; got {found}")


def test_systemd_readiness_reload_stop_and_watchdog(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "svc.ini", data_dir, workers=2,
                               extra="[statsd]\ngauge_interval_s = 1\n")
    supervisor = SupervisorProcess(config_path, data_dir,
                                   env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    try:
        supervisor.launch()
        ready = _messages(sock, "READY=1")[-1]
        assert ready["MAINPID"] == str(supervisor.pid)
        status = supervisor.status()  # ready means every worker was up
        assert len(status["workers"]) == 2
        assert all(w["state"] in ("idle", "busy") for w in status["workers"])

        pings = 0
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            try:
                pings += sock.recv(4096) == b"WATCHDOG=1"
            except TimeoutError:
                pass
        assert pings >= 3  # every 0.1 s (half of WATCHDOG_USEC); about 10 when not loaded
        _messages(sock, "STATUS=0/2 workers busy, 0 queued, 0 dead letters, processed 0"
                  " (0.0/s)", timeout_s=10)

        supervisor.signal(signal.SIGHUP)
        reload = _messages(sock, "RELOADING=1")[-1]
        assert int(reload["MONOTONIC_USEC"]) > 0
        _messages(sock, "READY=1")
        supervisor.signal(signal.SIGTERM)
        _messages(sock, "STOPPING=1")
        assert supervisor.wait_exit(30) == 0
    finally:
        supervisor.stop()


def test_notifier_takes_its_variables_out_of_the_environment() -> None:
    from procsupervisor.sdnotify import Notifier

    environ = {"NOTIFY_SOCKET": "@ps-test", "WATCHDOG_USEC": "4000000",
               "WATCHDOG_PID": str(os.getpid()), "OTHER": "kept"}
    notifier = Notifier.from_environment(environ)
    assert environ == {"OTHER": "kept"}  # workers forked later never see them
    assert notifier.address == "\0ps-test" and notifier.watchdog_every_s == 2.0
    elsewhere = Notifier.from_environment({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000",
                                           "WATCHDOG_PID": "1"})
    assert elsewhere.watchdog_every_s is None  # the watchdog is meant for another process
    silent = Notifier.from_environment({})
    assert not silent.enabled and silent.send(READY=1) is False


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="dropping privileges needs root; the tests do not run as root here")
def test_user_and_group_drop_privileges_after_binding_the_socket() -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    # The workers import modules after the drop: the interpreter must be readable by nobody
    # (not so for a Python installed under root's 0700 home).
    try:
        probe = subprocess.run(
            [PYTHON, "-c", "import ctypes, procsupervisor.workers.processor"], cwd="/",
            env=subprocess_env(), capture_output=True, text=True, user=nobody.pw_uid,
            group=nobody.pw_gid, timeout=60)
        problem = (probe.stderr.strip().splitlines() or ["?"])[-1] if probe.returncode else ""
    except OSError as exc:
        problem = str(exc)
    if problem:
        pytest.skip(f"user nobody cannot run this Python ({PYTHON}): {problem}")
    base = Path(tempfile.mkdtemp(prefix="ps-user-"))  # not under root's private tmp
    try:
        base.chmod(0o755)
        data_dir = base / "data"
        config_path = write_config(base / "svc.ini", data_dir, workers=1)
        data_dir.mkdir()  # root's: refused in one line, before anything is written there
        refused = cli(config_path, "start", "--user", "nobody")
        assert refused.returncode == 1 and refused.stderr.strip().endswith(
            f"Error: cannot start: data directory {data_dir} is not writable by user nobody"
            " (chown it to that user, or let systemd's StateDirectory= create it)")
        # (a socket left in a root-owned folder is unlinked by the next start: nobody answers)
        assert sorted(p.name for p in data_dir.iterdir()) == ["control.sock", "supervisor.lock"]
        shutil.rmtree(data_dir)
        supervisor = SupervisorProcess(config_path, data_dir,
                                       start_args=("--user", "nobody"))
        # as an operator would (or systemd's StateDirectory=): the data dir is the user's
        data_dir.mkdir()
        os.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
        try:
            status = supervisor.start().status()  # root may still use the socket
            for pid in (supervisor.pid, status["workers"][0]["pid"]):
                ids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)",
                                Path(f"/proc/{pid}/status").read_text(), re.M)
                assert ids is not None and {int(i) for i in ids.groups()} == {nobody.pw_uid}
            for owned in (data_dir, data_dir / "control.sock", data_dir / "queue"):
                assert owned.stat().st_uid == nobody.pw_uid, owned
            raw = base / "raw.json"
            raw.write_text('{"ProductName": "Firefox"}')
            raw.chmod(0o644)
            # the service user itself submits (and so owns the crash files it writes)
            submitted = cli(config_path, "submit", str(raw), user=nobody.pw_uid,
                            group=nobody.pw_gid)
            assert submitted.returncode == 0, submitted.stderr
            crash_id = submitted.stdout.strip()
            supervisor.wait_for(lambda s: acked_total(s) == 1, what="processed as nobody")
            assert processed_crash(data_dir, crash_id)["uuid"] == crash_id
            stopped = cli(config_path, "stop", "--wait", "--timeout", "30")
            assert stopped.returncode == 0, stopped.stderr
        finally:
            supervisor.stop()
    finally:
        shutil.rmtree(base)


def test_user_option_refuses_an_unknown_user(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "svc.ini", tmp_path / "data", workers=1)
    started = cli(config_path, "start", "--user", "no-such-user-ps")
    assert started.returncode == 1
    assert started.stderr.strip() == "Error: cannot start: unknown user 'no-such-user-ps'"
    assert not (tmp_path / "data" / "control.sock").exists()  # bound, then released


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (no systemd)")
    text = UNIT_FILE.read_text()
    values = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert values["Type"] == "notify"
    assert values["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert values["KillMode"] == "mixed"
    from procsupervisor.config import SUPERVISOR_DEFAULTS

    example = (ROOT / "scripts" / "example-production.ini").read_text()
    example_graceful = re.search(r"^graceful_timeout_s = (\S+)$", example, re.M)
    assert example_graceful is not None
    for graceful in (SUPERVISOR_DEFAULTS["graceful_timeout_s"], example_graceful.group(1)):
        assert float(values["TimeoutStopSec"]) > float(graceful)
    # verify checks that ExecStart exists: point it at this checkout's command
    unit = tmp_path / "procsupervisor.service"
    installed = Path(PYTHON).parent / "procsupervisor"
    unit.write_text(text.replace("/opt/procsupervisor/venv/bin/procsupervisor", str(installed)))
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                              timeout=60)
    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", verified
