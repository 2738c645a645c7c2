"""Start one worker's clients in a throwaway child, to know a configuration works before any
real worker depends on it (docs/architecture.md §3, §10).

Some values can only be judged by the code that uses them: the processor class
(`[supervisor] processor = module:factory`) must import and accept its `[processor]` options,
the symbol cache directory must be usable, every backend must accept its keys. A worker that
cannot start dies at once and is respawned for ever, so `start`, a reload and `check` fork a
child that does exactly what a new worker does before it reports `ready` (the worker side is
`procsupervisor.workers.worker_process:probe_main`, reached by name), and reports one line
back. Nothing is contacted over the network: storage clients connect on first use.

The child is forked, never spawned: it sees the configuration object as the workers will, and
the parent (the supervisor) imports nothing of the worker side.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from procsupervisor.registry import load_class

if TYPE_CHECKING:
    from procsupervisor.config import Config

# Called in the forked child as entry(sock, config, parent_pid); never returns.
PROBE_ENTRY = "procsupervisor.workers.worker_process:probe_main"
PROBE_TIMEOUT_S = 60.0  # as long as a real worker gets to become ready
MAX_REPLY_BYTES = 8192


class WorkerStartProbe:
    """One throwaway child starting a worker's clients with `config`. Non-blocking: the
    supervisor watches `fileno()` and calls `result()` when it is readable (or `wait`)."""

    def __init__(self, config: Config) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent_pid = os.getpid()
        self.started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            parent_sock.detach()
            _run_probe_entry(child_sock, config, parent_pid)
        child_sock.close()
        parent_sock.setblocking(False)
        self.pid = pid
        self.sock = parent_sock
        self._buffer = bytearray()
        self._outcome: str | None = None  # "" for success, else the reason
        self._done = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def done(self) -> bool:
        return self._done

    def expired(self, now: float, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
        return not self._done and now - self.started > timeout_s

    def result(self) -> str | None:
        """None while the child is still at work; then "" if a worker can start, else why
        not (one line)."""
        if self._done:
            return self._outcome
        while True:
            try:
                data = self.sock.recv(MAX_REPLY_BYTES)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                data = b""
            if not data:
                return self._finish(_or(self._decode(), "the probe exited without a word"))
            self._buffer += data
            if b"\n" in self._buffer or len(self._buffer) > MAX_REPLY_BYTES:
                return self._finish(_or(self._decode(), "the probe sent an unreadable reply"))

    def _decode(self) -> str | None:
        line = bytes(self._buffer).split(b"\n", 1)[0]
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        if not isinstance(reply, dict):
            return None
        return "" if reply.get("ok") is True else str(reply.get("error") or "unknown error")

    def _finish(self, outcome: str) -> str:
        self._outcome, self._done = outcome, True
        self.close()
        return outcome

    def wait(self, timeout_s: float = PROBE_TIMEOUT_S) -> str:
        """Block until the child answers (or `timeout_s` passed: then it is killed)."""
        deadline = self.started + timeout_s
        while True:
            outcome = self.result()
            if outcome is not None:
                return outcome
            left = deadline - time.monotonic()
            if left <= 0:
                return self.give_up(f"no answer within {timeout_s:g}s")
            select.select([self.sock], [], [], min(left, 1.0))

    def give_up(self, why: str) -> str:
        self.kill()
        return self._finish(why)

    def kill(self) -> None:
        """Only while it has not answered: its open socket proves it is alive and unreaped,
        so the pid is still its own."""
        if not self._done:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        # The child is reaped by whoever collects this process's children: the supervisor's
        # reaper, or `check_worker_start`.
        self.sock.close()


def check_worker_start(config: Config, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Start a worker's clients in a throwaway child and wait: "" if a worker can start with
    `config`, else why not. For `start` and `check`; the supervisor uses the probe itself,
    without waiting in its loop."""
    probe = WorkerStartProbe(config)
    try:
        return probe.wait(timeout_s)
    finally:
        probe.kill()
        try:
            os.waitpid(probe.pid, 0)
        except ChildProcessError:
            pass


def _or(outcome: str | None, otherwise: str) -> str:
    return otherwise if outcome is None else outcome


def _run_probe_entry(sock: socket.socket, config: Config, parent_pid: int) -> None:
    # Whatever happens, the child never returns into its parent's code.
    try:
        entry: Callable[..., object] = load_class(PROBE_ENTRY)
        entry(sock, config, parent_pid)
    except BaseException as exc:
        try:
            sock.sendall(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]})
                         .encode() + b"\n")
        except OSError:
            pass
    finally:
        os._exit(1)
