"""The supervisor's view of its workers: forking one, talking to it, and its bookkeeping."""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from procsupervisor.protocol import WORKER_MESSAGE_TYPES, FrameDecoder, encode
from procsupervisor.queues.base import CrashQueue, Delivery

if TYPE_CHECKING:
    from procsupervisor.config import Config

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# Worker states as shown in status.
STARTING, IDLE, BUSY, STOPPING = "starting", "idle", "busy", "stopping"


@dataclass
class Assignment:
    """A crash a worker holds: the delivery, the queue client it came from, and the task."""

    delivery: Delivery
    queue: CrashQueue
    started: float  # monotonic
    poison_reason: str | None = None  # set when the task is saving a poison record
    stage: str = "sent"  # then the worker's last `progress`: fetch, process, save


@dataclass
class WorkerHandle:
    index: int
    pid: int
    sock: socket.socket
    generation: int  # config generation it was started with
    spawned_at: float = field(default_factory=time.monotonic)
    state: str = STARTING
    assignment: Assignment | None = None
    processed: int = 0
    failed: int = 0
    restarts: int = 0
    retiring: bool = False  # finish the current crash, then stop
    kill_reason: str | None = None
    stop_sent: float = 0.0  # monotonic time `stop` was sent
    cache_stats: dict[str, Any] = field(default_factory=dict)
    decoder: FrameDecoder = field(default_factory=lambda: FrameDecoder(WORKER_MESSAGE_TYPES))
    alive: bool = True

    @property
    def crash_id(self) -> str | None:
        return self.assignment.delivery.crash_id if self.assignment else None

    def send(self, message: dict[str, Any]) -> None:
        """Send without blocking; a worker whose pipe is full or gone is treated as broken."""
        data = encode(message)
        sent = self.sock.send(data)
        if sent != len(data):
            raise BlockingIOError(errno.EAGAIN, "worker pipe is full")

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def rss_bytes(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as handle:
                return int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, ValueError, IndexError):
            return None

    def status(self, now: float) -> dict[str, Any]:
        busy_s = round(now - self.assignment.started, 3) if self.assignment else 0.0
        return {
            "index": self.index,
            "pid": self.pid,
            "state": self.state,
            "crash_id": self.crash_id,
            "stage": self.assignment.stage if self.assignment else None,
            "busy_s": busy_s,
            "processed": self.processed,
            "failed": self.failed,
            "restarts": self.restarts,
            "rss_bytes": self.rss_bytes(),
            "generation": self.generation,
            "retiring": self.retiring,
        }


def fork_worker(index: int, config: Config, generation: int, restarts: int) -> WorkerHandle:
    """Fork one worker with a duplex pipe (a Unix socket pair) to it; the child never returns."""
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    supervisor_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # child: never returns
        from procsupervisor.workers.worker_process import worker_main

        parent_sock.detach()
        worker_main(index, child_sock, config, supervisor_pid)
    child_sock.close()
    parent_sock.setblocking(False)
    return WorkerHandle(
        index=index, pid=pid, sock=parent_sock, generation=generation, restarts=restarts
    )
