"""Backend probes run in a throwaway child process (docs/architecture.md §5).

Probing the source, the destinations or the symbol suppliers needs their clients (boto3,
psycopg2, elasticsearch), which the supervisor never imports. So the supervisor forks a child
that reaches the probe code by name (`PROBE_ENTRY`, as the pool reaches the worker code), runs
the probes and writes one JSON object to a pipe, then exits. The supervisor reads the pipe
without blocking, one loop turn at a time; a child that overruns `PROBE_TIMEOUT_S` is killed
and every backend it was probing counts as unreachable. One child at a time.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from procsupervisor.backends import load_class
from procsupervisor.forked_child import detach_from_supervisor
from procsupervisor.health import Health

if TYPE_CHECKING:
    from procsupervisor.config import Config

log = logging.getLogger("procsupervisor.supervisor")

# Called in the forked child as entry(config, names or None, write_fd); never returns.
PROBE_ENTRY = "procsupervisor.probes:probe_in_child"
PROBE_TIMEOUT_S = 30.0
MAX_RESULT_BYTES = 1 << 20


@dataclass
class ProbeRun:
    """One probe child: its pid, the read end of its pipe, what it probes."""

    pid: int
    read_fd: int
    names: list[str] | None  # None: every backend but the queue
    started: float = field(default_factory=time.monotonic)
    output: bytearray = field(default_factory=bytearray)


@dataclass
class ProbeResults:
    """What one child reported: health by backend name; `failure` says why it reported nothing
    for some (timed out, crashed), in which case every name asked for is unreachable."""

    healths: dict[str, Health]
    requested: list[str] | None
    failure: str | None = None


class Prober:
    def __init__(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.run: ProbeRun | None = None
        self._unreaped: list[int] = []

    @property
    def busy(self) -> bool:
        return self.run is not None

    def start(self, config: Config, names: list[str] | None) -> None:
        """Fork a child probing `names` (None: the source, every destination and supplier)."""
        if self.run is not None:
            raise RuntimeError("a probe is already running")
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:
            os.close(read_fd)
            _run_probe_entry(config, names, write_fd)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.run = ProbeRun(pid=pid, read_fd=read_fd, names=names)

    def collect(self, now: float) -> ProbeResults | None:
        """The results once the child is done (or overdue, then killed); None while it runs."""
        self._reap_finished()
        run = self.run
        if run is None:
            return None
        finished = self._read(run)
        if not finished and now - run.started <= self.timeout_s:
            return None
        self.run = None
        os.close(run.read_fd)
        if not finished:
            _kill(run.pid)
        self._unreaped.append(run.pid)
        self._reap_finished()
        if not finished:
            return _failed(run, f"probe timed out after {self.timeout_s:g}s")
        return _parse(run)

    def run_now(self, config: Config, names: list[str] | None = None) -> ProbeResults:
        """Probe and wait for the results (at start, before the loop runs)."""
        self.start(config, names)
        assert self.run is not None
        deadline = self.run.started + self.timeout_s
        while True:
            now = time.monotonic()
            results = self.collect(now if now < deadline else deadline + 1)
            if results is not None:
                return results
            select.select([self.run.read_fd], [], [], max(0.0, min(0.5, deadline - now)))

    def close(self) -> None:
        if self.run is not None:
            _kill(self.run.pid)
            os.close(self.run.read_fd)
            self._unreaped.append(self.run.pid)
            self.run = None
        for pid in self._unreaped:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self._unreaped.clear()

    def _read(self, run: ProbeRun) -> bool:
        """Read what is there; True at end of file."""
        while True:
            try:
                chunk = os.read(run.read_fd, 65536)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not chunk:
                return True
            run.output += chunk
            if len(run.output) > MAX_RESULT_BYTES:
                return True

    def _reap_finished(self) -> None:
        # The pool's reaper (waitpid(-1)) may have collected a child first: then it is gone.
        for pid in list(self._unreaped):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._unreaped.remove(pid)


def _parse(run: ProbeRun) -> ProbeResults:
    try:
        decoded = json.loads(bytes(run.output)) if run.output else None
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        return _failed(run, "probe failed: the probe process reported nothing readable")
    healths = {str(name): Health.from_json(value) for name, value in decoded.items()}
    return ProbeResults(healths, run.names)


def _failed(run: ProbeRun, cause: str) -> ProbeResults:
    healths = {name: Health.unreachable(cause) for name in run.names or ()}
    return ProbeResults(healths, run.names, failure=cause)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run_probe_entry(config: Config, names: list[str] | None, write_fd: int) -> NoReturn:
    # Whatever happens here, the child must never return into the supervisor's loop.
    try:
        detach_from_supervisor(write_fd)
        entry: Callable[..., object] = load_class(PROBE_ENTRY)
        entry(config, names, write_fd)
    except BaseException:
        log.exception("probe child: entry point %s failed", PROBE_ENTRY)
    finally:
        os._exit(1)


