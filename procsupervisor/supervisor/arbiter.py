"""The supervisor: one event loop owning the queue, the worker pool and the control socket.

Modelled on gunicorn's arbiter (DESIGN.md section 3): signal handlers only record the signal and
wake the loop through `signal.set_wakeup_fd`; each loop turn handles signals, worker messages,
control requests, deadlines, reaping and respawning, then hands queued crashes to idle workers.
The loop never blocks longer than `TICK_S`, so deadlines and the control socket stay live while
every worker is busy. Outcomes follow DESIGN.md section 5.
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
from dataclasses import dataclass
from typing import Any

from procsupervisor import __version__, crashid
from procsupervisor import config as config_module
from procsupervisor.backends import make_metrics, make_queue
from procsupervisor.config import Config, ConfigError
from procsupervisor.logs import log_event, set_level
from procsupervisor.protocol import WORKER_MESSAGE_TYPES as OUTCOMES, ProtocolError
from procsupervisor.queues.base import CrashQueue, Delivery
from procsupervisor.queues.selection import WeightedSelector
from procsupervisor.supervisor.control import ControlServer
from procsupervisor.supervisor.pool import (
    BUSY,
    IDLE,
    STARTING,
    STOPPING,
    Assignment,
    WorkerHandle,
    fork_worker,
)
from procsupervisor.supervisor.status import Counters, aggregate_cache_stats

log = logging.getLogger("procsupervisor.supervisor")

TICK_S = 0.1
START_TIMEOUT_S = 60.0  # a worker that is not ready by then is killed and respawned
STOP_TIMEOUT_S = 10.0  # an idle worker told to stop that is still there by then is killed
SHORT_LIFE_S = 2.0  # an idle worker dying younger than this counts towards crash-loop backoff
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 30.0
MAX_RETRY_DELAY_S = 300.0
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


@dataclass
class PoisonTask:
    """A crash that killed its worker `max_attempts` times: save a record, then dead-letter."""

    delivery: Delivery
    queue: CrashQueue
    reason: str


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.generation = 0
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.target = config.supervisor.workers
        self.metrics = make_metrics(config)
        self.queue = make_queue(config, self.metrics)
        self.retired_queues: list[CrashQueue] = []
        self.chooser = WeightedSelector(config.queue_weights, self.queue.queue_names)
        self.counters = Counters(self.queue.queue_names)
        self.workers: dict[int, WorkerHandle] = {}  # by pid
        self.slot_failures: dict[int, int] = {}
        self.slot_next_spawn: dict[int, float] = {}
        self.slot_spawns: dict[int, int] = {}
        self.poison_tasks: deque[PoisonTask] = deque()
        self.in_flight: set[str] = set()
        self.draining = False
        self.stop_deadline: float | None = None
        self.hard_stop = False
        self.signals: deque[int] = deque()
        self.started = time.monotonic()
        self.sel = selectors.DefaultSelector()
        self.control: ControlServer | None = None
        self._lock_fd: int | None = None
        self._wakeup_r: socket.socket | None = None
        self._wakeup_w: socket.socket | None = None

    # == lifecycle ================================================================================

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        self._lock_data_dir()
        try:
            self._set_title()
            self.control = ControlServer(self.config.supervisor.socket, self._control_request)
            self.sel.register(self.control.fileno(), selectors.EVENT_READ, ("listen", None))
            self._install_signals()
            recovered = self.queue.recover_in_flight()
            log_event(log, logging.INFO, "supervisor started", pid=os.getpid(),
                      workers=self.target, data_dir=str(self.config.data_dir),
                      config=str(self.config.path or "-"), recovered_in_flight=recovered,
                      version=__version__)
            while not self._finished():
                try:
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

    def _lock_data_dir(self) -> None:
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "supervisor.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SupervisorError(f"another supervisor is running on {data_dir}")
        self._lock_fd = fd

    def _install_signals(self) -> None:
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        for sock in (self._wakeup_r, self._wakeup_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_w.fileno(), warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._record_signal)
        self.sel.register(self._wakeup_r.fileno(), selectors.EVENT_READ, ("wakeup", None))

    def _record_signal(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)

    def _finished(self) -> bool:
        if self.hard_stop:
            return not self.workers
        return self.draining and not self.workers and not self.poison_tasks

    def _shutdown(self) -> None:
        self.hard_stop = True  # whatever is still held is redelivered after the next start
        for worker in list(self.workers.values()):
            worker.kill("supervisor exiting")
        self._reap(block=True)
        if self.control is not None:
            self.control.close()
        for queue in (self.queue, *self.retired_queues):
            try:
                queue.close()
            except Exception:
                log.exception("closing the queue failed")
        self.metrics.close()
        if self._wakeup_w is not None:
            signal.set_wakeup_fd(-1)
            for signum in HANDLED_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            self._wakeup_w.close()
        if self._wakeup_r is not None:
            self._wakeup_r.close()
        self.sel.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    # == the loop =================================================================================

    def _turn(self) -> None:
        for key, _mask in self.sel.select(self._timeout()):
            kind, ref = key.data
            if kind == "worker":
                self._read_worker(ref)
            elif kind == "conn":
                self._read_control(key.fd)
            elif kind == "listen":
                self._accept_control()
            elif kind == "wakeup":
                self._drain_wakeup()
        self._handle_signals()
        now = time.monotonic()
        self._enforce_deadlines(now)
        self._reap()
        self._maintain_pool(now)
        self._dispatch()
        self._close_retired_queues()
        for queue in (self.queue, *self.retired_queues):
            queue.poll()
        if self.control is not None:
            for fd in self.control.expire():
                self._unregister(fd)

    def _timeout(self) -> float:
        # Wake sooner when a respawn is due before the tick ends.
        now = time.monotonic()
        due = [t for t in self.slot_next_spawn.values() if t > now]
        return min(TICK_S, min(due) - now) if due else TICK_S

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
                self.scale(self.target + 1)
            elif signum == signal.SIGTTOU:
                self.scale(max(0, self.target - 1))
            # SIGCHLD only wakes the loop; every turn reaps.

    # == operator actions =========================================================================

    def begin_stop(self, fast: bool) -> None:
        if fast:
            log_event(log, logging.INFO, "fast stop: killing workers",
                      in_flight=len(self.in_flight))
            self.hard_stop = True
            self.draining = True
            for worker in self.workers.values():
                worker.kill("fast stop")
            return
        if not self.draining:
            self.draining = True
            self.stop_deadline = time.monotonic() + self.config.supervisor.graceful_timeout_s
            log_event(log, logging.INFO, "graceful stop: finishing in-flight crashes",
                      in_flight=len(self.in_flight),
                      graceful_timeout_s=self.config.supervisor.graceful_timeout_s)

    def scale(self, count: int) -> None:
        self.target = max(0, int(count))
        log_event(log, logging.INFO, "scaled", target_workers=self.target)

    def reload(self) -> dict[str, Any]:
        """Re-read the config; on error keep running as before and report it."""
        old = self.config
        new_metrics = None
        try:
            new = config_module.load(old.path, data_dir=old.data_dir, overrides=old.overrides)
            new_metrics = make_metrics(new) if new.statsd != old.statsd else None
            new_queue = None
            if new.queue != old.queue:
                new_queue = make_queue(new, new_metrics or self.metrics)
        except (ConfigError, OSError, ImportError, ValueError) as exc:
            if new_metrics is not None:  # made for a config that is not taking over
                new_metrics.close()
            self.last_reload_error = str(exc)
            log_event(log, logging.ERROR, "reload failed, keeping the running config",
                      error=str(exc))
            return {"ok": False, "error": str(exc)}
        if new.supervisor.socket != old.supervisor.socket:
            log_event(log, logging.WARNING, "control socket path changes only on restart",
                      socket=str(old.supervisor.socket))
        if new_queue is not None:
            self.retired_queues.append(self.queue)
            self.queue = new_queue
            self.chooser = WeightedSelector(new.queue_weights, new_queue.queue_names)
        else:
            self.chooser.set_weights(new.queue_weights)
        if new_metrics is not None:
            self.metrics.close()
            self.metrics = new_metrics
        self.config = new
        self.generation += 1
        self.reloads += 1
        self.last_reload_error = None
        self.target = new.supervisor.workers
        set_level(new.log_level)
        for worker in self.workers.values():
            worker.retiring = True  # replaced by one of the new generation
        log_event(log, logging.INFO, "reloaded", generation=self.generation,
                  target_workers=self.target, log_level=new.log_level)
        return {"ok": True, "generation": self.generation}

    # == workers: spawning, retiring, reaping =====================================================

    def _maintain_pool(self, now: float) -> None:
        """Spawn missing workers and send `stop` to idle ones that are to go: retiring ones,
        and all of them once a graceful stop has nothing left to hand out."""
        if self.hard_stop:
            return
        stopping = self.draining and not self.poison_tasks
        if not stopping:
            active = {w.index: w for w in self.workers.values() if not w.retiring}
            # While draining, poison records still need a worker to save them.
            target = self.target if not self.draining else max(1, self.target)
            for worker in active.values():
                if worker.index >= target:
                    worker.retiring = True
            for index in range(target):
                if index in active or now < self.slot_next_spawn.get(index, 0.0):
                    continue
                self._spawn(index)
        for worker in self.workers.values():
            if worker.state == IDLE and (stopping or worker.retiring):
                self._send_stop(worker)

    def _spawn(self, index: int) -> None:
        spawns = self.slot_spawns.get(index, 0)
        worker = fork_worker(index, self.config, self.generation, restarts=spawns)
        self.slot_spawns[index] = spawns + 1
        self.slot_next_spawn[index] = 0.0
        self.workers[worker.pid] = worker
        self.sel.register(worker.sock.fileno(), selectors.EVENT_READ, ("worker", worker.pid))
        log_event(log, logging.DEBUG, "worker spawned", index=index, pid=worker.pid,
                  generation=self.generation)

    def _send_stop(self, worker: WorkerHandle) -> None:
        worker.state = STOPPING
        worker.stop_sent = time.monotonic()
        try:
            worker.send({"type": "stop"})
        except OSError:
            worker.kill("pipe broken")

    def _enforce_deadlines(self, now: float) -> None:
        deadline_s = self.config.supervisor.deadline_s
        for worker in self.workers.values():
            if worker.state == BUSY and worker.assignment is not None:
                if now - worker.assignment.started > deadline_s:
                    worker.kill(f"deadline of {deadline_s:g}s exceeded in stage"
                                f" {worker.assignment.stage}")
            elif worker.state == STARTING and now - worker.spawned_at > START_TIMEOUT_S:
                worker.kill("not ready in time")
            elif worker.state == STOPPING and now - worker.stop_sent > STOP_TIMEOUT_S:
                worker.kill("did not stop in time")
        if self.stop_deadline is not None and now > self.stop_deadline and not self.hard_stop:
            log_event(log, logging.WARNING, "graceful timeout: killing workers",
                      in_flight=len(self.in_flight))
            self.hard_stop = True
            for worker in self.workers.values():
                worker.kill("graceful timeout")

    def _reap(self, block: bool = False) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._worker_died(worker, status)

    def _worker_died(self, worker: WorkerHandle, status: int) -> None:
        worker.alive = False
        self._unregister(worker.sock.fileno())
        worker.sock.close()
        cause = worker.kill_reason or _describe_exit(status)
        expected = worker.state == STOPPING and worker.kill_reason is None
        log_event(log, logging.DEBUG if expected else logging.WARNING, "worker exited",
                  index=worker.index, pid=worker.pid, cause=cause, crash_id=worker.crash_id)
        if worker.assignment is not None:
            self._assignment_lost(worker, worker.assignment, cause)
        now = time.monotonic()
        never_ready = worker.state == STARTING and not self.hard_stop
        if not never_ready and (expected or worker.kill_reason is not None):
            self.slot_failures[worker.index] = 0
        elif never_ready or (
            worker.assignment is None and now - worker.spawned_at < SHORT_LIFE_S
        ):
            failures = self.slot_failures.get(worker.index, 0) + 1
            self.slot_failures[worker.index] = failures
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (failures - 1))
            self.slot_next_spawn[worker.index] = now + delay
            log_event(log, logging.WARNING, "worker crash loop: delaying respawn",
                      index=worker.index, failures=failures, delay_s=delay)

    def _assignment_lost(self, worker: WorkerHandle, task: Assignment, cause: str) -> None:
        delivery = task.delivery
        self.in_flight.discard(delivery.crash_id)
        worker.failed += 1
        self.counters.completed(ok=False)
        if self.hard_stop:
            # Not the crash's fault: leave it unacked; the queue redelivers it after restart.
            log_event(log, logging.INFO, "left in flight for the next start",
                      crash_id=delivery.crash_id, queue=delivery.queue)
            return
        if task.poison_reason is not None:
            self._dead_letter(task.queue, delivery,
                              f"{task.poison_reason}; poison record not saved: worker died"
                              f" ({cause})")
        elif delivery.attempt >= self.config.supervisor.max_attempts:
            reason = f"worker killed on attempt {delivery.attempt} of"
            reason += f" {self.config.supervisor.max_attempts}: {cause}"
            self.poison_tasks.append(PoisonTask(delivery, task.queue, reason))
            self.in_flight.add(delivery.crash_id)
        else:
            self._retry(task.queue, delivery, f"worker died: {cause}")

    # == worker messages ==========================================================================

    def _read_worker(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is None or not worker.alive:
            return
        try:
            data = worker.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            # EOF: the worker is gone or going; the reaper will account for it.
            self._unregister(worker.sock.fileno())
            return
        try:
            for message in worker.decoder.feed(data):
                self._on_message(worker, message)
        except ProtocolError as exc:
            log_event(log, logging.ERROR, "bad message from worker, restarting it",
                      index=worker.index, pid=worker.pid, error=str(exc))
            worker.kill(f"protocol error: {exc}"[:200])

    def _on_message(self, worker: WorkerHandle, message: dict[str, Any]) -> None:
        kind = message["type"]
        if isinstance(message.get("cache_stats"), dict):
            worker.cache_stats = message["cache_stats"]
        if kind == "ready" and worker.state == STARTING:
            worker.state = IDLE  # a retiring or draining pool stops it later in this turn
            return
        task = worker.assignment
        if task is None or message.get("crash_id") != task.delivery.crash_id:
            raise ProtocolError(f"{kind} for a crash the worker does not hold")
        if kind == "progress":
            task.stage = str(message.get("stage", ""))[:40]
        elif kind == "result":
            self._on_result(worker, task, message)
        else:
            raise ProtocolError(f"unexpected {kind} message")

    def _on_result(self, worker: WorkerHandle, task: Assignment, result: dict[str, Any]) -> None:
        outcome = result.get("outcome")
        if outcome not in OUTCOMES:
            raise ProtocolError(f"unknown outcome {outcome!r}")
        reason = str(result.get("reason") or "")[:500]
        delivery = task.delivery
        worker.assignment = None
        worker.state = IDLE
        self.in_flight.discard(delivery.crash_id)
        ok = outcome == "ok"
        if ok:
            worker.processed += 1
            self.slot_failures[worker.index] = 0
        else:
            worker.failed += 1
        self.counters.completed(ok=ok and task.poison_reason is None)
        if task.poison_reason is not None:
            note = "" if ok else f"; poison record not saved: {reason}"
            self._dead_letter(task.queue, delivery, task.poison_reason + note)
        elif ok:
            self._ack(task.queue, delivery)
        elif outcome == "invalid":
            self._dead_letter(task.queue, delivery, reason or "invalid crash")
        elif delivery.attempt >= self.config.supervisor.max_attempts:
            self._dead_letter(task.queue, delivery,
                              f"{outcome} after {delivery.attempt} attempts: {reason}")
        else:
            self._retry(task.queue, delivery, f"{outcome}: {reason}")
        log_event(log, logging.INFO, "crash done", crash_id=delivery.crash_id,
                  queue=delivery.queue, attempt=delivery.attempt, outcome=outcome,
                  poison=task.poison_reason is not None, reason=reason,
                  **{f"{k}_ms": v for k, v in (result.get("timings_ms") or {}).items()
                     if isinstance(v, int | float)})
        self._retire_if_over_memory(worker)

    def _retire_if_over_memory(self, worker: WorkerHandle) -> None:
        limit_mb = self.config.supervisor.worker_max_rss_mb
        if limit_mb is None or worker.retiring:
            return
        rss = worker.rss_bytes()
        if rss is not None and rss > limit_mb * 1024 * 1024:
            log_event(log, logging.INFO, "worker over its memory limit, replacing it",
                      index=worker.index, rss_mb=rss // 1048576, limit_mb=limit_mb)
            worker.retiring = True

    # == queue actions ============================================================================

    def _finish(self, action: str, call: Any, delivery: Delivery, *args: Any) -> bool:
        """Run one queue action; on failure log it and leave the message to be redelivered."""
        try:
            call(delivery, *args)
        except Exception as exc:
            log_event(log, logging.ERROR, f"queue {action} failed; the crash will be redelivered",
                      crash_id=delivery.crash_id[:80], queue=delivery.queue,
                      error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        self.metrics.incr(f"supervisor.{action}", tags={"queue": delivery.queue})
        return True

    def _ack(self, queue: CrashQueue, delivery: Delivery) -> None:
        if self._finish("ack", queue.ack, delivery):
            self.counters.queue(delivery.queue).acked += 1

    def _retry(self, queue: CrashQueue, delivery: Delivery, reason: str) -> None:
        base = self.config.supervisor.retry_delay_s
        delay = min(MAX_RETRY_DELAY_S, base * 2 ** (delivery.attempt - 1))
        if self._finish("retry", queue.retry, delivery, reason, delay):
            self.counters.queue(delivery.queue).retried += 1
            log_event(log, logging.INFO, "crash retried", crash_id=delivery.crash_id,
                      queue=delivery.queue, attempt=delivery.attempt, delay_s=delay,
                      reason=reason)

    def _dead_letter(self, queue: CrashQueue, delivery: Delivery, reason: str) -> None:
        if self._finish("dead_letter", queue.dead_letter, delivery, reason):
            self.counters.queue(delivery.queue).dead_lettered += 1
            log_event(log, logging.WARNING, "crash dead-lettered",
                      crash_id=delivery.crash_id[:80], queue=delivery.queue,
                      attempt=delivery.attempt, reason=reason)

    def _dispatch(self) -> None:
        if self.hard_stop:
            return
        for worker in self.workers.values():
            # A killed worker can still report the result it sent just before the kill (and so
            # turn idle) until it is reaped: a crash handed to it now would be lost with it.
            if worker.state != IDLE or worker.retiring or worker.kill_reason is not None:
                continue
            if self.poison_tasks:
                poison = self.poison_tasks.popleft()
                self._assign(worker, Assignment(poison.delivery, poison.queue, time.monotonic(),
                                                poison_reason=poison.reason))
                continue
            if self.draining:
                return
            task = self._next_task()
            if task is None:
                return
            self._assign(worker, task)

    def _next_task(self) -> Assignment | None:
        """The next valid, not-already-running crash from the queues, or None."""
        queue = self.queue
        while True:
            try:
                pulled = self.chooser.pull(queue.get)
            except Exception as exc:
                log_event(log, logging.ERROR, "queue get failed",
                          error=f"{type(exc).__name__}: {exc}"[:300])
                return None
            if pulled is None:
                return None
            name, delivery = pulled
            assert isinstance(delivery, Delivery)
            self.counters.queue(name).pulled += 1
            if not crashid.is_valid(delivery.crash_id):
                self._dead_letter(queue, delivery, "invalid crash id")
                continue
            if delivery.crash_id in self.in_flight:
                self._ack(queue, delivery)
                log_event(log, logging.INFO, "duplicate of a crash in flight, acked",
                          crash_id=delivery.crash_id, queue=name)
                continue
            return Assignment(delivery, queue, time.monotonic())

    def _assign(self, worker: WorkerHandle, task: Assignment) -> None:
        delivery = task.delivery
        worker.assignment = task
        worker.state = BUSY
        self.in_flight.add(delivery.crash_id)
        message: dict[str, Any] = {
            "type": "process",
            "crash_id": delivery.crash_id,
            "ruleset": delivery.ruleset,
            "queue": delivery.queue,
            "attempt": delivery.attempt,
        }
        if task.poison_reason is not None:
            message["poison"] = task.poison_reason
        try:
            worker.send(message)
        except OSError:
            worker.kill("pipe broken")

    def _close_retired_queues(self) -> None:
        if not self.retired_queues:
            return
        in_use = {id(w.assignment.queue) for w in self.workers.values() if w.assignment}
        in_use |= {id(p.queue) for p in self.poison_tasks}
        for queue in [q for q in self.retired_queues if id(q) not in in_use]:
            self.retired_queues.remove(queue)
            queue.close()

    # == control socket ===========================================================================

    def _accept_control(self) -> None:
        assert self.control is not None
        sock = self.control.accept()
        if sock is not None:
            self.sel.register(sock.fileno(), selectors.EVENT_READ, ("conn", None))

    def _read_control(self, fd: int) -> None:
        assert self.control is not None
        self.sel.unregister(fd)  # re-registered below if the request is not complete
        if not self.control.readable(fd):
            self.sel.register(fd, selectors.EVENT_READ, ("conn", None))

    def _control_request(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request["command"]
        if command == "status":
            return {"ok": True, "status": self.status()}
        if command == "reload":
            return self.reload()
        if command == "scale":
            count = request.get("workers")
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 1024:
                return {"ok": False, "error": "scale needs 'workers': an integer 0-1024"}
            self.scale(count)
            return {"ok": True, "target_workers": self.target}
        if command == "stop":
            self.begin_stop(fast=bool(request.get("fast")))
            return {"ok": True, "pid": os.getpid()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def _unregister(self, fd: int) -> None:
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    # == status ===================================================================================

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        uptime = now - self.started
        queues, totals = self.counters.snapshot(uptime)
        try:
            depths = self.queue.depths()
        except Exception as exc:
            depths = {}
            log_event(log, logging.WARNING, "queue depths unavailable", error=str(exc))
        workers = sorted(self.workers.values(), key=lambda w: (w.index, w.retiring, w.pid))
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(uptime, 3),
            "config": str(self.config.path) if self.config.path else None,
            "data_dir": str(self.config.data_dir),
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
            "generation": self.generation,
            "draining": self.draining,
            "target_workers": self.target,
            "deadline_s": self.config.supervisor.deadline_s,
            "queue_weights": dict(self.chooser.weights),
            "log_level": self.config.log_level,
            "workers": [w.status(now) for w in workers],
            "queues": queues,
            "queue_depths": depths,
            "poison_pending": len(self.poison_tasks),
            "crash_loop_backoff": {
                str(i): round(t - now, 3) for i, t in self.slot_next_spawn.items() if t > now
            },
            "totals": totals,
            "symbol_cache": aggregate_cache_stats(w.cache_stats for w in self.workers.values()),
        }

    def _set_title(self) -> None:
        try:
            from setproctitle import setproctitle
        except ImportError:
            return
        setproctitle("procsupervisor: supervisor")


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
