"""The supervisor's view of one worker process: its pipe, its state, the crash it holds.

A worker's state changes only through its own methods (`mark_ready`, `assign`, `note_stage`,
`finish`, `begin_retire`, `begin_stop`, `kill`, `exited`), so the pool and the dispatcher never
set fields behind each other's back.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from procsupervisor.protocol import (
    WORKER_MESSAGE_TYPES,
    FrameDecoder,
    Message,
    ProcessRequest,
    StopRequest,
    WorkerMessage,
    decode_worker_message,
    encode,
)
from procsupervisor.queues.base import CrashQueue, Delivery

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class WorkerState(StrEnum):
    """As shown in status."""

    STARTING = "starting"  # forked, not ready yet
    IDLE = "idle"
    BUSY = "busy"  # holds a crash
    STOPPING = "stopping"  # told to stop


@dataclass
class Assignment:
    """A crash a worker holds: the delivery and the queue client it came from."""

    delivery: Delivery
    queue: CrashQueue
    started: float  # monotonic
    poison_reason: str | None = None  # set when the worker is saving a poison record
    stage: str = "sent"  # then the worker's last `progress`: fetch, process, save

    def request(self) -> ProcessRequest:
        delivery = self.delivery
        return ProcessRequest(
            crash_id=delivery.crash_id,
            ruleset=delivery.ruleset,
            queue=delivery.queue,
            attempt=delivery.attempt,
            poison=self.poison_reason,
        )


@dataclass
class WorkerHandle:
    index: int  # its slot in the pool
    pid: int
    sock: socket.socket
    generation: int  # config generation it was started with
    spawned_at: float = field(default_factory=time.monotonic)
    state: WorkerState = WorkerState.STARTING
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
    exit_cause: str | None = None  # set once reaped

    @property
    def crash_id(self) -> str | None:
        return self.assignment.delivery.crash_id if self.assignment else None

    @property
    def available(self) -> bool:
        """Can take a crash now. A killed worker can still report the result it sent just
        before the kill (and so turn idle) until it is reaped: a crash handed to it then would
        be lost with it."""
        return self.state is WorkerState.IDLE and not self.retiring and self.kill_reason is None

    # -- state changes ------------------------------------------------------------------------

    def mark_ready(self) -> None:
        self.state = WorkerState.IDLE

    def assign(self, assignment: Assignment) -> None:
        """Hold `assignment` and send it; a broken pipe gets the worker killed."""
        self.assignment = assignment
        self.state = WorkerState.BUSY
        self._send_or_kill(assignment.request())

    def note_stage(self, stage: str) -> None:
        if self.assignment is not None:
            self.assignment.stage = stage

    def note_cache_stats(self, cache_stats: dict[str, Any]) -> None:
        self.cache_stats = cache_stats

    def finish(self, ok: bool) -> Assignment | None:
        """The crash it held is done: back to idle; returns what it held."""
        assignment = self.assignment
        self.assignment = None
        self.state = WorkerState.IDLE
        if ok:
            self.processed += 1
        else:
            self.failed += 1
        return assignment

    def begin_retire(self) -> None:
        """Replace this worker: it finishes its crash, then the pool stops it."""
        self.retiring = True

    def begin_stop(self, now: float) -> None:
        self.state = WorkerState.STOPPING
        self.stop_sent = now
        self._send_or_kill(StopRequest())

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def exited(self, cause: str) -> None:
        """Reaped: the process is gone and its pipe closed."""
        self.alive = False
        self.exit_cause = cause
        self.sock.close()

    # -- the pipe -----------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Send without blocking; a worker whose pipe is full or gone is treated as broken."""
        data = encode(message)
        sent = self.sock.send(data)
        if sent != len(data):
            raise BlockingIOError(errno.EAGAIN, "worker pipe is full")

    def _send_or_kill(self, message: Message) -> None:
        try:
            self.send(message)
        except OSError:
            self.kill("pipe broken")

    def receive(self) -> Iterator[WorkerMessage] | None:
        """The messages that have arrived (maybe none yet), or None at EOF. Raises
        ProtocolError for a malformed frame at once, and for a frame that is not a message the
        worker may send when iteration reaches it (the ones before it are handled first)."""
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return iter(())
        except OSError:
            data = b""
        if not data:
            return None
        frames = self.decoder.feed(data)
        return (decode_worker_message(frame) for frame in frames)

    # -- status -------------------------------------------------------------------------------

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
