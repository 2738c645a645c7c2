"""The supervisor loop: one event loop driving the worker pool, the dispatcher and the control
socket.

Modelled on gunicorn's arbiter (docs/architecture.md §3): signal handlers only record the signal and
wake the loop through `signal.set_wakeup_fd`; each loop turn handles signals, worker messages,
control requests, deadlines, reaping and respawning, then hands queued crashes to idle workers.
The loop never blocks longer than `TICK_S`, so deadlines and the control socket stay live while
every worker is busy. The pool (`pool.py`) owns the processes; the dispatcher (`dispatcher.py`)
owns the queues and the outcome rules (docs/architecture.md §5); this module owns neither, it only
decides when each runs, and answers reload, scale, stop and status.
"""

from __future__ import annotations

import fcntl
import logging
import os
import selectors
import signal
import socket
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procsupervisor import __version__, data_access
from procsupervisor.backends import make_metrics, make_queue
from procsupervisor.config import Config
from procsupervisor.logs import log_event
from procsupervisor.metrics import batched
from procsupervisor.protocol import Outcome, Progress, ProtocolError, Ready, Result, WorkerMessage
from procsupervisor.queues.base import CrashQueue
from procsupervisor.sdnotify import Notifier
from procsupervisor.supervisor.control import ControlServer, PendingReply
from procsupervisor.supervisor.dispatcher import Dispatcher
from procsupervisor.supervisor.health_monitor import HealthMonitor
from procsupervisor.supervisor.housekeeping import Housekeeping, gauge_interval_s
from procsupervisor.supervisor.pool import WorkerPool
from procsupervisor.supervisor.reload_check import ReloadCheck
from procsupervisor.supervisor.reloading import Reloading
from procsupervisor.supervisor.status import Counters, aggregate_cache_stats
from procsupervisor.supervisor.worker_handle import WorkerHandle, WorkerState

if TYPE_CHECKING:
    from procsupervisor.service import Service

log = logging.getLogger("procsupervisor.supervisor")

TICK_S = 0.1
HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGCHLD,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


class SupervisorError(Exception):
    """The supervisor cannot start (lock held, socket in use, bad backend)."""


class Supervisor(Reloading):
    def __init__(self, config: Config, service: Service | None = None) -> None:
        """`service`: what `start` prepared (a pre-bound control socket, the systemd
        notifier, the log file); None runs without them, as the tests' in-process rigs do."""
        self.config = config
        self.service = service
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.workers = config.supervisor.workers  # wanted; the pool gets there over turns
        self.metrics = make_metrics(config)
        queue = make_queue(config, self.metrics)
        self.counters = Counters(queue.queue_names)
        self.dispatcher = Dispatcher(config, queue, self.metrics, self.counters)
        self.health = HealthMonitor(config, self.metrics)  # backends and the breaker (§5)
        self.io_selector = selectors.DefaultSelector()
        self.pool = WorkerPool(config, self.io_selector)
        self.draining = False
        self.stop_deadline: float | None = None
        self.hard_stop = False
        self.signals: deque[int] = deque()
        self.started = time.monotonic()
        self.control: ControlServer | None = None
        self.reload_check: ReloadCheck | None = None
        self._lock_fd: int | None = None
        self._wakeup_r: socket.socket | None = None
        self._wakeup_w: socket.socket | None = None
        notifier = service.notifier if service is not None else Notifier(None)
        self.housekeeping = Housekeeping(notifier, gauge_interval_s(config.statsd))

    @property
    def queue(self) -> CrashQueue:
        """The queue client crashes are pulled from now."""
        return self.dispatcher.queue

    # == lifecycle ================================================================================

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        # `start` takes the lock and binds the socket itself, before dropping root.
        self._lock_fd, self.control = (
            self.service.take_prepared() if self.service is not None else (None, None)
        )
        if self._lock_fd is None:
            self._lock_fd = lock_data_dir(self.config.data_dir,
                                          self.config.supervisor.data_access)
        try:
            self._check_backends()
            self._set_title()
            if self.control is not None:
                self.control.handler = self._control_request
            else:
                self.control = ControlServer(self.config.supervisor.socket,
                                             self._control_request)
            self.io_selector.register(self.control.fileno(), selectors.EVENT_READ,
                                      ("listen", None))
            self.housekeeping.open_metrics_endpoint(self.config.supervisor.metrics_listen,
                                                    self.io_selector, self.status)
            self._install_signals()
            recovered = self.queue.recover_in_flight()
            log_event(log, logging.INFO, "supervisor started", pid=os.getpid(),
                      workers=self.workers, data_dir=str(self.config.data_dir),
                      config=str(self.config.path or "-"), recovered_in_flight=recovered,
                      version=__version__,
                      health=self.health.status(time.monotonic(), self.queue)["state"])
            while not self._finished():
                try:
                    with batched(self.metrics):  # a turn's metrics leave in few datagrams
                        self._turn()
                except Exception:
                    # A bug or an unexpected backend error must not take the pool down: log it
                    # and carry on with the next turn (after a tick, so it cannot spin).
                    log.exception("supervisor loop turn failed")
                    time.sleep(TICK_S)
            log_event(log, logging.INFO, "supervisor stopped", processed=self.counters.processed,
                      failed=self.counters.failed)
            return 0
        finally:
            self._shutdown()

    def _check_backends(self) -> None:
        """Refuse to start on a misconfigured backend; start degraded on an unreachable one."""
        refused = self.health.check_at_start(self.queue)
        if refused:
            more = f" (and {len(refused) - 1} more: run `procsupervisor check`)"
            raise SupervisorError(refused[0] + (more if refused[1:] else ""))

    def _install_signals(self) -> None:
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        for sock in (self._wakeup_r, self._wakeup_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_w.fileno(), warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._record_signal)
        self.io_selector.register(self._wakeup_r.fileno(), selectors.EVENT_READ, ("wakeup", None))

    def _record_signal(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)

    def _finished(self) -> bool:
        if self.hard_stop:
            return not self.pool.handles
        return self.draining and not self.pool.handles and not self.dispatcher.poison_pending

    def _shutdown(self) -> None:
        self.hard_stop = True  # whatever is still held is redelivered after the next start
        if self.reload_check is not None:
            self.reload_check.probe.give_up("supervisor stopping")
            self._settle_reload_check(time.monotonic())
        self.pool.kill_all("supervisor exiting")
        self._reap(block=True)
        if self.control is not None:
            self.control.close()
        self.housekeeping.close()
        self.health.close()
        self.dispatcher.close_queues()
        self.metrics.close()
        if self._wakeup_w is not None:
            signal.set_wakeup_fd(-1)
            for signum in HANDLED_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            self._wakeup_w.close()
        if self._wakeup_r is not None:
            self._wakeup_r.close()
        self.io_selector.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    # == the loop =================================================================================

    def _turn(self) -> None:
        for key, _mask in self.io_selector.select(self._timeout()):
            kind, ref = key.data
            if kind == "worker":
                self._read_worker(ref)
            elif kind == "conn":
                self._read_control(key.fd)
            elif kind == "listen":
                self._accept_control()
            elif kind == "wakeup":
                self._drain_wakeup()
            elif kind == "call":  # a socket served by housekeeping (the metrics endpoint)
                ref()
        self._settle_reload_check(time.monotonic())
        self._handle_signals()
        now = time.monotonic()
        self.pool.enforce_deadlines(now)
        self._enforce_stop_deadline(now)
        self._reap()
        if not self.hard_stop:
            stopping = self.draining and not self.dispatcher.poison_pending
            self.pool.maintain(now, workers=self.workers, draining=self.draining,
                               stopping=stopping)
        self.health.tick(now)
        self._dispatch()
        self.dispatcher.close_retired_queues(self.pool.assignments())
        self.dispatcher.poll_queues()
        if self.control is not None:
            for fd in self.control.expire():
                self._unregister(fd)
        self.housekeeping.turn(now, workers_up=self.pool.up_count() >= self.workers,
                               metrics=self.metrics, status=self.status)

    def _timeout(self) -> float:
        # Wake sooner when a respawn is due before the tick ends.
        now = time.monotonic()
        due = self.pool.next_spawn_due(now)
        return min(TICK_S, due - now) if due is not None else TICK_S

    def _drain_wakeup(self) -> None:
        assert self._wakeup_r is not None
        try:
            while self._wakeup_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.popleft()
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.begin_stop(fast=False)
            elif signum == signal.SIGQUIT:
                self.begin_stop(fast=True)
            elif signum == signal.SIGHUP:
                self.reload()
            elif signum == signal.SIGTTIN:
                self.scale(self.workers + 1)
            elif signum == signal.SIGTTOU:
                self.scale(max(0, self.workers - 1))
            # SIGCHLD only wakes the loop; every turn reaps.

    def _enforce_stop_deadline(self, now: float) -> None:
        if self.stop_deadline is not None and now > self.stop_deadline and not self.hard_stop:
            log_event(log, logging.WARNING, "graceful timeout: killing workers",
                      in_flight=len(self.dispatcher.in_flight))
            self.hard_stop = True
            self.pool.kill_all("graceful timeout")

    def _reap(self, block: bool = False) -> None:
        for worker in self.pool.reap(hard_stop=self.hard_stop, block=block):
            if worker.assignment is not None:
                self.dispatcher.assignment_lost(worker.assignment, worker.exit_cause or "",
                                                hard_stop=self.hard_stop)

    def _dispatch(self) -> None:
        if not self.hard_stop:
            self.dispatcher.dispatch(self.pool.available(), draining=self.draining,
                                     pulling=self.health.allow_pull())

    # == operator actions =========================================================================

    def begin_stop(self, fast: bool) -> None:
        if not self.draining:
            self.housekeeping.stopping()
        if fast:
            log_event(log, logging.INFO, "fast stop: killing workers",
                      in_flight=len(self.dispatcher.in_flight))
            self.hard_stop = True
            self.draining = True
            self.pool.kill_all("fast stop")
            return
        if not self.draining:
            self.draining = True
            self.stop_deadline = time.monotonic() + self.config.supervisor.graceful_timeout_s
            log_event(log, logging.INFO, "graceful stop: finishing in-flight crashes",
                      in_flight=len(self.dispatcher.in_flight),
                      graceful_timeout_s=self.config.supervisor.graceful_timeout_s)

    def scale(self, workers: int) -> None:
        self.workers = max(0, int(workers))
        log_event(log, logging.INFO, "scaled", workers=self.workers)

    # == worker messages ==========================================================================

    def _read_worker(self, pid: int) -> None:
        worker = self.pool.handles.get(pid)
        if worker is None or not worker.alive:
            return
        try:
            messages = worker.receive()
            if messages is None:
                # EOF: the worker is gone or going; the reaper will account for it.
                self.pool.unwatch(worker.sock.fileno())
                return
            for message in messages:
                self._on_message(worker, message)
        except ProtocolError as exc:
            log_event(log, logging.ERROR, "bad message from worker, restarting it",
                      index=worker.index, pid=worker.pid, error=str(exc))
            worker.kill(f"protocol error: {exc}"[:200])

    def _on_message(self, worker: WorkerHandle, message: WorkerMessage) -> None:
        if isinstance(message, Ready | Result) and message.cache_stats is not None:
            worker.note_cache_stats(message.cache_stats)
        if isinstance(message, Ready):
            if worker.state is not WorkerState.STARTING:
                raise ProtocolError("ready from a worker that is already running")
            worker.mark_ready()  # a retiring or draining pool stops it later in this turn
            return
        if worker.crash_id is None or message.crash_id != worker.crash_id:
            raise ProtocolError(f"{message.type} for a crash the worker does not hold")
        if isinstance(message, Progress):
            worker.note_stage(message.stage)
            return
        self.dispatcher.on_result(worker, message)
        if message.outcome is Outcome.UNAVAILABLE:
            self.health.crash_unavailable(message.backend, message.reason, time.monotonic())
        if message.outcome is Outcome.OK:
            self.health.crash_succeeded(time.monotonic())
            self.pool.worker_succeeded(worker)
        self.pool.retire_if_over_memory(worker)

    # == control socket ===========================================================================

    def _accept_control(self) -> None:
        assert self.control is not None
        sock = self.control.accept()
        if sock is not None:
            self.io_selector.register(sock.fileno(), selectors.EVENT_READ, ("conn", None))

    def _read_control(self, fd: int) -> None:
        assert self.control is not None
        self.io_selector.unregister(fd)  # re-registered below if the request is not complete
        if not self.control.readable(fd):
            self.io_selector.register(fd, selectors.EVENT_READ, ("conn", None))

    def _control_request(self, request: dict[str, Any]) -> dict[str, Any] | PendingReply:
        command = request["command"]
        if command == "status":
            return {"ok": True, "status": self.status()}
        if command == "reload":
            return self.reload()
        if command == "scale":
            workers = request.get("workers")
            if (not isinstance(workers, int) or isinstance(workers, bool)
                    or not 0 <= workers <= 1024):
                return {"ok": False, "error": "scale needs 'workers': an integer 0-1024"}
            self.scale(workers)
            return {"ok": True, "target_workers": self.workers}
        if command == "stop":
            self.begin_stop(fast=bool(request.get("fast")))
            return {"ok": True, "pid": os.getpid()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def _unregister(self, fd: int) -> None:
        try:
            self.io_selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    # == status ===================================================================================

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        uptime = now - self.started
        queues, totals = self.counters.snapshot(uptime)
        try:
            depths = self.queue.depths()
            dead_letters = self.queue.dead_letter_count()
        except Exception as exc:
            depths, dead_letters = {}, None
            log_event(log, logging.WARNING, "queue depths unavailable", error=str(exc))
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(uptime, 3),
            "config": str(self.config.path) if self.config.path else None,
            "data_dir": str(self.config.data_dir),
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
            "generation": self.pool.generation,
            "draining": self.draining,
            "target_workers": self.workers,
            "deadline_s": self.config.supervisor.deadline_s,
            "queue_weights": dict(self.dispatcher.queue_chooser.weights),
            "log_level": self.config.log_level,
            "workers": self.pool.status(now),
            "queues": queues,
            "queue_depths": depths,
            "dead_letters": dead_letters,
            "poison_pending": len(self.dispatcher.poison_pending),
            "duplicates_held": sum(map(len, self.dispatcher.held_duplicates.values())),
            "stuck_in_flight": self.dispatcher.stuck_in_flight(),
            "in_flight": len(self.dispatcher.in_flight),
            "worker_restarts": self.pool.restarts,
            "crash_loop_backoff": self.pool.backoff_status(now),
            "totals": totals,
            "health": self.health.status(now, self.queue),
            # Workers replaced by reloads or restarts count too: counters survive reloads.
            "symbol_cache": aggregate_cache_stats(
                [self.pool.retired_cache_stats,
                 *(w.cache_stats for w in self.pool.handles.values())]
            ),
        }

    def _set_title(self) -> None:
        try:
            from setproctitle import setproctitle
        except ImportError:
            return
        setproctitle("procsupervisor: supervisor")


def lock_data_dir(data_dir: Path, access: str) -> int:
    """Hold the data directory for this supervisor (released when the process exits),
    creating it, or narrowing one of ours, for `[supervisor] data_access`."""
    data_access.apply(access)
    data_access.prepare_data_dir(data_dir, access)
    fd = os.open(data_dir / "supervisor.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SupervisorError(f"another supervisor is running on {data_dir}")
    return fd
