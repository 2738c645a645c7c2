"""Issue 13 items 3 and 5: a configuration every worker would die on, or one that saves
crashes nowhere, is refused by `start` and by a reload (which keeps the running workers and
says why), never accepted while the pool crash-loops."""

from __future__ import annotations

import subprocess
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
)

from procsupervisor import config
from procsupervisor.worker_probe import check_worker_start

GOOD_PROCESSOR = "processor = _core_helpers:HookedProcessor\n"


def config_text(data_dir: Path, *, supervisor: str = GOOD_PROCESSOR, extra: str = "") -> str:
    return (
        "[supervisor]\n"
        f"data_dir = {data_dir}\n"
        "workers = 1\n"
        "retry_delay_s = 0.05\n"
        + supervisor
        + "[logging]\nlevel = INFO\n"
        + extra
    )


def bad_configs(tmp_path: Path) -> dict[str, tuple[dict[str, str], str]]:
    """name -> (config_text keyword arguments, what the refusal must mention)."""
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    return {
        "no module": ({"supervisor": "processor = nosuchmodule:X\n"},
                      "No module named 'nosuchmodule'"),
        "no attribute": ({"supervisor": "processor = os:nosuchattr\n"},
                         "has no attribute 'nosuchattr'"),
        "timeout word": ({"extra": "[processor]\nstackwalk_timeout_s = soon\n"},
                         "key 'stackwalk_timeout_s': 'soon' is not a number"),
        "negative frames": ({"extra": "[processor]\nstackwalk_max_frames = -3\n"},
                            "key 'stackwalk_max_frames': must be >= 1"),
        "cache dir is a file": ({"extra": f"[symbols]\ncache_dir = {a_file}\n"},
                                str(a_file)),
        "no destination": ({"extra": "[destinations]\norder =\n"},
                           "key 'order': no destination"),
    }


CASES = ["no module", "no attribute", "timeout word", "negative frames", "cache dir is a file",
         "no destination"]


@pytest.mark.parametrize("case", CASES)
def test_a_config_workers_cannot_run_with_is_refused_before_any_worker(
    tmp_path: Path, case: str
) -> None:
    kwargs, mentioned = bad_configs(tmp_path)[case]
    path = tmp_path / "bad.ini"
    path.write_text(config_text(tmp_path / "data", **kwargs))
    try:  # what `check` and `start` both ask
        problem = check_worker_start(config.load(path, environ={}))
    except config.ConfigError as exc:
        problem = str(exc)
    assert mentioned in problem


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no attribute", "cache dir is a file", "no destination"])
def test_start_refuses_it_in_one_line(tmp_path: Path, case: str) -> None:
    kwargs, mentioned = bad_configs(tmp_path)[case]
    path = tmp_path / "bad.ini"
    path.write_text(config_text(tmp_path / "data", **kwargs))
    try:
        started = subprocess.run(
            [PYTHON, "-m", "procsupervisor", "--config", str(path), "start"],
            cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("start accepted a config its workers cannot run with")
    assert started.returncode == 1
    (line,) = started.stderr.strip().splitlines()
    assert line.startswith("Error: ") and mentioned in line


@pytest.mark.slow
def test_a_reload_its_workers_cannot_start_with_keeps_the_old_workers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = tmp_path / "sup.ini"
    good = config_text(data_dir)
    path.write_text(good)
    supervisor = SupervisorProcess(path, data_dir).start()
    try:
        pids = {w["pid"] for w in supervisor.status()["workers"]}
        for case, (kwargs, mentioned) in bad_configs(tmp_path).items():
            path.write_text(config_text(data_dir, **kwargs))
            reply = supervisor.request("reload")
            assert reply["ok"] is False and mentioned in reply["error"], (case, reply)
            status = supervisor.status()
            assert mentioned in status["last_reload_error"], case
            assert status["reloads"] == 0 and {w["pid"] for w in status["workers"]} == pids
        path.write_text(good)
        assert supervisor.request("reload")["ok"] is True
        crash_id = submit(path)
        supervisor.wait_for(lambda s: acked_total(s) == 1 and s["last_reload_error"] is None,
                            what="processed after a good reload")
    finally:
        supervisor.stop()
    assert processed_crash(data_dir, crash_id)["success"] is True


@pytest.mark.parametrize(("section", "key", "value", "problem"), [
    ("supervisor", "metrics_listen", "0.0.0.0:9187", "must be a loopback address"),
    ("supervisor", "metrics_listen", "127.0.0.1", "must be host:port"),
    ("supervisor", "probe_max_interval_s", "0", "must be >= 0.1"),
    ("statsd", "gauge_interval_s", "soon", "'soon' is not a number"),
    ("statsd", "gauge_interval_s", "0", "must be > 0"),
    ("statsd", "max_udp_bytes", "0", "must be >= 1"),
    ("statsd", "max_udp_bytes", "70000", "must be <= 65507"),
])
def test_the_issue_10_keys_are_typed_too(
    tmp_path: Path, section: str, key: str, value: str, problem: str
) -> None:
    setting = f"{key} = {value}\n"
    path = tmp_path / "bad.ini"
    path.write_text(config_text(
        tmp_path / "data",
        supervisor=GOOD_PROCESSOR + (setting if section == "supervisor" else ""),
        extra=f"[{section}]\n{setting}" if section != "supervisor" else ""))
    with pytest.raises(config.ConfigError) as refused:
        config.load(path, environ={})
    assert f"key '{key}'" in str(refused.value) and problem in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no module", "no attribute", None])
def test_check_reports_workers_that_cannot_start_in_one_line(
    tmp_path: Path, case: str | None
) -> None:
    kwargs, mentioned = bad_configs(tmp_path)[case] if case else ({}, "")
    path = tmp_path / "check.ini"
    path.write_text(config_text(tmp_path / "data", **kwargs))
    checked = subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(path), "check"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    printed = checked.stdout.splitlines()
    workers = [line for line in printed if line.startswith("workers:")]
    if case is None:
        assert checked.returncode == 0 and workers == [], checked.stdout + checked.stderr
        return
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert len(workers) == 1 and workers[0].startswith("workers: cannot start: ")
    assert mentioned in workers[0]
    assert "source fs: healthy" in printed and not checked.stderr
