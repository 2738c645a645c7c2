"""Helpers for the core tests: test-only processor factories and a supervisor in a subprocess.

The processor factories are reached only through the `[supervisor] processor = module:factory`
config key that the tests set; production input cannot reach them. Their knobs come from the
config's [processor] section:
- `hold_dir`: a crash whose id is a file name in this folder waits (up to 60 s) until the file
  is removed, so a test can act while a worker is known to be busy with it;
- `hang_marker`: a raw crash with this key set to true never finishes (deadline tests);
- `sleep_ms`: every crash takes at least this long (chaos tests keep crashes in flight);
  a raw crash's `TestSleepMs` value, when present, replaces it for that crash;
- `record_file`: each finished processing appends its crash id here (processed-twice counts);
- `fail_start_if_exists`: while this file exists, building the processor fails, so workers
  started from then on die before they are ready (crash-loop tests; `start` and a reload try
  a worker's start first, so the file is created once the supervisor runs).
(Benchmarks use the package's `procsupervisor.workers.bench_processor` instead.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable


class HookedProcessor:
    """Wraps the product's Processor with the test knobs above."""

    def __init__(self, *, symbols: Any, metrics: Any, options: Mapping[str, str] | None) -> None:
        from procsupervisor.workers.processor import Processor

        options = dict(options or {})
        if options.get("fail_start_if_exists") and Path(options["fail_start_if_exists"]).exists():
            raise RuntimeError("test: this worker cannot start")
        self.hold_dir = Path(options["hold_dir"]) if options.get("hold_dir") else None
        self.hang_marker = options.get("hang_marker") or None
        self.sleep_s = float(options.get("sleep_ms") or 0) / 1000
        self.record_file = Path(options["record_file"]) if options.get("record_file") else None
        self.inner = Processor(symbols=symbols, metrics=metrics, options={})
        self.rulesets = self.inner.rulesets

    @classmethod
    def ruleset_names(cls) -> tuple[str, ...]:
        from procsupervisor.workers.processor import Processor

        return Processor.ruleset_names()

    def process(
        self,
        crash_id: str,
        raw_crash: dict[str, Any],
        dumps: dict[str, bytes],
        *,
        ruleset: str = "default",
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._wait_if_held(crash_id)
        if self.hang_marker and raw_crash.get(self.hang_marker) is True:
            while True:
                time.sleep(1)
        time.sleep(float(raw_crash.get("TestSleepMs", self.sleep_s * 1000)) / 1000)
        processed = self.inner.process(crash_id, raw_crash, dumps, ruleset=ruleset,
                                       previous=previous)
        if self.record_file is not None:
            with self.record_file.open("a", encoding="utf-8") as record:
                record.write(f"{crash_id}\n")
        return processed

    def poison(self, crash_id: str, raw_crash: dict[str, Any], reason: str) -> dict[str, Any]:
        return self.inner.poison(crash_id, raw_crash, reason)

    def _wait_if_held(self, crash_id: str) -> None:
        if self.hold_dir is None:
            return
        give_up = time.monotonic() + 60
        while (self.hold_dir / crash_id).exists() and time.monotonic() < give_up:
            time.sleep(0.02)


def write_config(
    path: Path,
    data_dir: Path,
    *,
    workers: int = 2,
    deadline_s: float = 30,
    max_attempts: int = 3,
    retry_delay_s: float = 0.05,
    graceful_timeout_s: float = 10,
    processor_options: Mapping[str, str] | None = None,
    weights: str = "",
    queue_options: str = "",
    extra: str = "",
) -> Path:
    """A config for a supervisor running the test processor; `queue_options` are extra
    `key = value` lines for [queue] (e.g. a RabbitMQ backend), `extra` whole sections."""
    options = "".join(f"{k} = {v}\n" for k, v in (processor_options or {}).items())
    path.write_text(
        "[supervisor]\n"
        f"data_dir = {data_dir}\n"
        f"workers = {workers}\n"
        f"deadline_s = {deadline_s}\n"
        f"max_attempts = {max_attempts}\n"
        f"retry_delay_s = {retry_delay_s}\n"
        f"graceful_timeout_s = {graceful_timeout_s}\n"
        "processor = _core_helpers:HookedProcessor\n"
        "[queue]\n"
        + (f"weights = {weights}\n" if weights else "")
        + queue_options
        + "[processor]\n"
        + options
        + "[logging]\nlevel = INFO\n"
        + extra,
        encoding="utf-8",
    )
    return path


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCSUPERVISOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    return env


class SupervisorProcess:
    """`procsupervisor start` in a subprocess, with helpers to wait on its status."""

    def __init__(
        self,
        config_path: Path,
        data_dir: Path,
        start_args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = config_path
        self.data_dir = data_dir
        self.start_args = start_args  # options for `start`, e.g. ("--workers", "3")
        self.extra_env = dict(env or {})  # e.g. NOTIFY_SOCKET for the systemd tests
        self.log_path = data_dir.parent / f"supervisor-{time.time_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> SupervisorProcess:
        """Start the process without waiting for anything."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "procsupervisor", "--config", str(self.config_path), "start",
             *self.start_args],
            cwd=ROOT,
            env={**subprocess_env(), **self.extra_env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def start(self, timeout: float = 60) -> SupervisorProcess:
        """Launch and wait until every worker is up."""
        self.launch()
        self.wait_for(
            lambda s: (
                all(w["state"] != "starting" for w in s["workers"])
                and len(s["workers"]) >= s["target_workers"]
            ),
            timeout,
            what="workers ready",
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def request(self, command: str, **args: Any) -> dict[str, Any]:
        from procsupervisor.supervisor.control import request

        return request(self.data_dir / "control.sock", command, timeout=10, **args)

    def status(self) -> dict[str, Any]:
        reply = self.request("status")
        assert reply["ok"], reply
        return reply["status"]

    def wait_for(self, predicate: Any, timeout: float = 60, what: str = "condition") -> dict:
        """Poll status until `predicate` holds. The timeout is generous on purpose: it only
        bounds how long a failing test takes, and CI machines can be heavily loaded."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"supervisor exited ({self.proc.returncode}):\n{self.log()}")
            try:
                last = self.status()
            except Exception as exc:  # not listening yet
                last = exc
            else:
                if predicate(last):
                    return last
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last status: {last}\n{self.log()}")

    def log(self, tail: int | None = 6000) -> str:
        """The supervisor's output (its last `tail` characters; None for all)."""
        try:
            text = self.log_path.read_text(errors="replace")
            return text[-tail:] if tail else text
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


def make_raw_crash(**extra: Any) -> dict[str, Any]:
    return {
        "ProductName": "Firefox",
        "Version": "120.0",
        "ReleaseChannel": "release",
        "BuildID": "20231120000000",
        "submitted_timestamp": "2026-11-28T10:00:00+00:00",
        **extra,
    }


def load_config(config_path: Path) -> Any:
    from procsupervisor import config

    return config.load(config_path, environ={})


def submit(
    config_path: Path, queue: str = "normal", dumps: dict[str, bytes] | None = None, **extra: Any
) -> str:
    from procsupervisor.intake import submit_crash

    return submit_crash(
        load_config(config_path),
        make_raw_crash(**extra),
        dumps if dumps is not None else {"upload_file_minidump": b"MDMP"},
        queue,
    )


def processed_crash(data_dir: Path, crash_id: str) -> dict[str, Any]:
    """The saved processed crash, checked against the package's JSON Schema on the way."""
    from procsupervisor.workers.processor import validate_processed_crash

    path = data_dir / "crashes" / "v1" / "processed_crash" / crash_id
    processed = json.loads(path.read_text())
    validate_processed_crash(processed)
    return processed


def dead_letters(data_dir: Path) -> list[dict[str, Any]]:
    from procsupervisor.queues.fs import FSQueue

    return FSQueue(data_dir / "queue").dead_letters()


def acked_total(status: Mapping[str, Any]) -> int:
    return sum(q["acked"] for q in status["queues"].values())
