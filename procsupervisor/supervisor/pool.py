"""The worker pool: forking, retiring, reaping, deadlines and crash-loop backoff
(docs/architecture.md §3).

Workers fill numbered slots `0 .. workers-1`; a `Slot` outlives the workers that fill it in
turn and carries what the pool remembers between them (spawn count, crash-loop backoff). The
pool never looks inside a crash: what a worker holds, and what happens to it when the worker
dies, is the dispatcher's business.

The worker code is reached by name only (`WORKER_ENTRY`, loaded in the forked child), like
gunicorn's worker class: the supervisor imports nothing of workers/.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from procsupervisor.backends import load_class
from procsupervisor.logs import log_event
from procsupervisor.supervisor.status import add_counters
from procsupervisor.supervisor.worker_handle import Assignment, WorkerHandle, WorkerState

if TYPE_CHECKING:
    from procsupervisor.config import Config

log = logging.getLogger("procsupervisor.supervisor")

# Called in the forked child as entry(index, sock, config, supervisor_pid); never returns.
WORKER_ENTRY = "procsupervisor.workers.worker_process:worker_main"
START_TIMEOUT_S = 60.0  # a worker that is not ready by then is killed and respawned
STOP_TIMEOUT_S = 10.0  # an idle worker told to stop that is still there by then is killed
SHORT_LIFE_S = 2.0  # an idle worker dying younger than this counts towards crash-loop backoff
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 30.0


@dataclass
class Slot:
    """One place in the pool, kept across the workers that fill it in turn."""

    index: int
    spawns: int = 0  # workers started here so far (the next one's `restarts`)
    processed: int = 0  # crashes done by the workers that have left this slot
    failed: int = 0
    failures: int = 0  # consecutive short lives, for crash-loop backoff
    next_spawn: float = 0.0  # monotonic; no respawn here before then


class WorkerPool:
    """The live workers (by pid) and their slots. Worker pipes are registered in the loop's
    I/O selector with data `("worker", pid)`."""

    def __init__(self, config: Config, io_selector: selectors.BaseSelector) -> None:
        self.config = config
        self.generation = 0  # config generation new workers are started with
        self.io_selector = io_selector
        self.handles: dict[int, WorkerHandle] = {}  # by pid
        self.slots: dict[int, Slot] = {}
        self.restarts = 0  # workers that exited unexpectedly (killed, crashed)
        # Cache counters of workers gone (replaced by a reload, restarted), so the totals in
        # status keep counting across reloads.
        self.retired_cache_stats: dict[str, Any] = {}

    def slot(self, index: int) -> Slot:
        return self.slots.setdefault(index, Slot(index))

    def new_generation(self, config: Config) -> None:
        """After a reload: every worker is replaced by one started with `config`."""
        self.config = config
        self.generation += 1
        for worker in self.handles.values():
            worker.begin_retire()

    # -- spawning and retiring ----------------------------------------------------------------

    def maintain(self, now: float, *, workers: int, draining: bool, stopping: bool) -> None:
        """Spawn missing workers and send `stop` to idle ones that are to go: retiring ones,
        and all of them once `stopping`. While draining, one worker is kept (even at
        `workers` 0) for poison records still to be saved."""
        if not stopping:
            active = {w.index: w for w in self.handles.values() if not w.retiring}
            if draining:
                workers = max(1, workers)
            for worker in active.values():
                if worker.index >= workers:
                    worker.begin_retire()
            for index in range(workers):
                if index in active or now < self.slot(index).next_spawn:
                    continue
                self._spawn(index)
        for worker in self.handles.values():
            if worker.state is WorkerState.IDLE and (stopping or worker.retiring):
                worker.begin_stop(now)

    def _spawn(self, index: int) -> None:
        slot = self.slot(index)
        worker = fork_worker(index, self.config, self.generation, restarts=slot.spawns)
        slot.spawns += 1
        slot.next_spawn = 0.0
        self.handles[worker.pid] = worker
        self.io_selector.register(worker.sock.fileno(), selectors.EVENT_READ,
                                  ("worker", worker.pid))
        log_event(log, logging.DEBUG, "worker spawned", index=index, pid=worker.pid,
                  generation=self.generation)

    def retire_if_over_memory(self, worker: WorkerHandle) -> None:
        limit_mb = self.config.supervisor.worker_max_rss_mb
        if limit_mb is None or worker.retiring:
            return
        rss = worker.rss_bytes()
        if rss is not None and rss > limit_mb * 1024 * 1024:
            log_event(log, logging.INFO, "worker over its memory limit, replacing it",
                      index=worker.index, rss_mb=rss // 1048576, limit_mb=limit_mb)
            worker.begin_retire()

    def worker_succeeded(self, worker: WorkerHandle) -> None:
        """A crash went through: whatever made the slot crash-loop is over."""
        self.slot(worker.index).failures = 0

    # -- deadlines, killing, reaping ----------------------------------------------------------

    def enforce_deadlines(self, now: float) -> None:
        deadline_s = self.config.supervisor.deadline_s
        for worker in self.handles.values():
            if worker.state is WorkerState.BUSY and worker.assignment is not None:
                if now - worker.assignment.started > deadline_s:
                    worker.kill(f"deadline of {deadline_s:g}s exceeded in stage"
                                f" {worker.assignment.stage}")
            elif worker.state is WorkerState.STARTING and now - worker.spawned_at > START_TIMEOUT_S:
                worker.kill("not ready in time")
            elif worker.state is WorkerState.STOPPING and now - worker.stop_sent > STOP_TIMEOUT_S:
                worker.kill("did not stop in time")

    def kill_all(self, reason: str) -> None:
        for worker in self.handles.values():
            worker.kill(reason)

    def reap(self, *, hard_stop: bool, block: bool = False) -> list[WorkerHandle]:
        """Collect exited workers (waiting for all of them if `block`); returns them, each
        with its `exit_cause` and the assignment it still held."""
        exited = []
        # Every child is collected, workers or not (a reload's trial start, worker_probe.py):
        # nothing else waits for them, and a child left unreaped stays a zombie.
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self.handles.pop(pid, None)
            if worker is not None:
                self._exited(worker, status, hard_stop)
                exited.append(worker)
        return exited

    def _exited(self, worker: WorkerHandle, status: int, hard_stop: bool) -> None:
        self.unwatch(worker.sock.fileno())
        cause = worker.kill_reason or describe_exit(status)
        expected = worker.state is WorkerState.STOPPING and worker.kill_reason is None
        log_event(log, logging.DEBUG if expected else logging.WARNING, "worker exited",
                  index=worker.index, pid=worker.pid, cause=cause, crash_id=worker.crash_id)
        worker.exited(cause)
        now = time.monotonic()
        slot = self.slot(worker.index)
        slot.processed += worker.processed
        slot.failed += worker.failed
        add_counters(self.retired_cache_stats, worker.cache_stats)
        if not expected and not hard_stop:
            self.restarts += 1
        never_ready = worker.state is WorkerState.STARTING and not hard_stop
        if not never_ready and (expected or worker.kill_reason is not None):
            slot.failures = 0
        elif never_ready or (
            worker.assignment is None and now - worker.spawned_at < SHORT_LIFE_S
        ):
            slot.failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (slot.failures - 1))
            slot.next_spawn = now + delay
            log_event(log, logging.WARNING, "worker crash loop: delaying respawn",
                      index=worker.index, failures=slot.failures, delay_s=delay)

    def unwatch(self, fd: int) -> None:
        """Stop reading a worker's pipe (at EOF, or once reaped)."""
        try:
            self.io_selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    # -- views --------------------------------------------------------------------------------

    def up_count(self) -> int:
        """Workers that are up and staying (started, not retiring or stopping)."""
        return sum(
            1 for w in self.handles.values()
            if w.state in (WorkerState.IDLE, WorkerState.BUSY) and not w.retiring
        )

    def available(self) -> list[WorkerHandle]:
        return [worker for worker in self.handles.values() if worker.available]

    def assignments(self) -> Iterator[Assignment]:
        return (w.assignment for w in self.handles.values() if w.assignment is not None)

    def next_spawn_due(self, now: float) -> float | None:
        """When the next delayed respawn is due, if any is."""
        due = [slot.next_spawn for slot in self.slots.values() if slot.next_spawn > now]
        return min(due) if due else None

    def backoff_status(self, now: float) -> dict[str, float]:
        return {
            str(slot.index): round(slot.next_spawn - now, 3)
            for slot in self.slots.values()
            if slot.next_spawn > now
        }

    def status(self, now: float) -> list[dict[str, Any]]:
        """One row per worker. `processed`/`failed` count for the slot, so that replacing
        its worker (a reload) does not reset them; a retiring worker shows only its own."""
        workers = sorted(self.handles.values(), key=lambda w: (w.index, w.retiring, w.pid))
        rows = []
        for worker in workers:
            row = worker.status(now)
            if not worker.retiring:
                slot = self.slot(worker.index)
                row["processed"] += slot.processed
                row["failed"] += slot.failed
            rows.append(row)
        return rows


def fork_worker(index: int, config: Config, generation: int, restarts: int) -> WorkerHandle:
    """Fork one worker with a duplex pipe (a Unix socket pair) to it; the child never returns."""
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    supervisor_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        parent_sock.detach()
        _run_worker_entry(index, child_sock, config, supervisor_pid)
    child_sock.close()
    parent_sock.setblocking(False)
    return WorkerHandle(
        index=index, pid=pid, sock=parent_sock, generation=generation, restarts=restarts
    )


def _run_worker_entry(
    index: int, sock: socket.socket, config: Config, supervisor_pid: int
) -> NoReturn:
    # Whatever happens here, the child must never return into the supervisor's loop.
    try:
        entry: Callable[..., object] = load_class(WORKER_ENTRY)
        entry(index, sock, config, supervisor_pid)
    except BaseException:
        log.exception("worker %d: entry point %s failed", index, WORKER_ENTRY)
    finally:
        os._exit(1)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
