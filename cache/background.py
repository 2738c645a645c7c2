"""Symbol misses indexed off the crash path (docs/architecture.md §9): each one by an indexer
process.

A worker that misses a module starts an indexer (or finds its own still running) that fetches
and indexes the module into the shared cache (fill.py), and waits for it at most what is left
of the crash's wait budget; then the crash is walked without that module, with a note, and the
indexer goes on for the crashes after it.

An indexer is a fresh interpreter (`python -m procsupervisor.cache.background`, the job pickled
on its stdin), not a fork of the worker: SQLite's lock bookkeeping must not cross a fork, and a
fresh process's memory is the build's own. The worker's resident size (what
`worker_max_rss_mb` watches) does not grow with a big file, and the indexer is held to the
index memory budget twice: the `.sym` size check before parsing (fill.py) and RLIMIT_DATA, so
a file too big is refused once, as a negative entry with the reason, instead of killing anyone.
An indexer dies with its worker (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# Exit codes of an indexer (anything else: it failed unexpectedly, or was killed).
STORED = 0  # an index or a negative entry is stored
UNKNOWN = 3  # a supplier failed: nothing stored, ask again after error_retry_s
LOOSE = 4  # built but not storable (bigger than the whole cache)
_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.05
_DATA_SLACK_BYTES = 32 << 20  # allocator rounding on top of the budget
_START_UP_BYTES = 64 << 20  # imports and the cache's database, before any parsing


@dataclass
class FillJob:
    """Everything an indexer process needs, picklable: where the cache is, how to open this
    worker's suppliers and shared store (factories are called in the indexer: clients are never
    shared between processes), and the key to fill."""

    key: str
    relpath: str
    cache_dir: Path
    codec: Any
    suppliers: Callable[[], list[Any]]
    shared: Callable[[], Any]
    negative_ttl_s: float
    lock_timeout_s: float
    memory_budget_bytes: int | None
    parent_pid: int = field(default_factory=os.getpid)
    sys_path: list[str] = field(default_factory=lambda: list(sys.path))


class BackgroundIndexer:
    """Runs one indexer process per key at a time for this worker."""

    def __init__(self, make_job: Callable[[str, str], FillJob]) -> None:
        self.make_job = make_job
        self.jobs: dict[str, subprocess.Popen[bytes]] = {}
        self.finished: dict[str, int] = {}  # key -> exit code, until asked for

    def start(self, key: str, relpath: str) -> bool:
        """Start indexing `key` unless an indexer of this worker already is; True if started."""
        self.reap()
        if key in self.jobs:
            return False
        self.finished.pop(key, None)
        job = self.make_job(key, relpath)
        process = subprocess.Popen(
            [sys.executable, "-m", "procsupervisor.cache.background"],
            stdin=subprocess.PIPE,
            close_fds=True,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(pickle.dumps(job.sys_path) + pickle.dumps(job))
        finally:
            process.stdin.close()
        self.jobs[key] = process
        return True

    def wait(self, key: str, timeout_s: float) -> int | None:
        """The exit code of `key`'s indexer once it has ended (waiting at most `timeout_s`),
        None while it runs; STORED when none was started for it."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        pause = _POLL_FIRST_S
        while True:
            self._reap_one(key)
            if key not in self.jobs:
                return self.finished.pop(key, STORED)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX_S)

    def running(self) -> int:
        self.reap()
        return len(self.jobs)

    def reap(self) -> None:
        """Collect the indexers that have ended (no zombies left behind)."""
        for key in list(self.jobs):
            self._reap_one(key)

    def _reap_one(self, key: str) -> None:
        process = self.jobs.get(key)
        if process is not None and process.poll() is not None:
            del self.jobs[key]
            self.finished[key] = process.returncode


# ---- the indexer process ---------------------------------------------------------------------


def run_job(job: FillJob) -> int:
    """Fill `job.key` in this (indexer) process; returns its exit code."""
    from procsupervisor.cache.counters import CounterSink
    from procsupervisor.cache.download import temp_dir
    from procsupervisor.cache.fill import IndexFiller
    from procsupervisor.cache.locks import KeyLocks
    from procsupervisor.cache.shared_counters import SharedCounters
    from procsupervisor.cache.store import EntryKind, SymbolStore

    store = SymbolStore(job.cache_dir, None)
    sink = CounterSink(None, SharedCounters(store.directory))
    filler = IndexFiller(
        store,
        job.suppliers(),
        job.codec,
        sink,
        temp_dir(store.directory),
        negative_ttl_s=job.negative_ttl_s,
        shared=job.shared(),
        memory_budget_bytes=job.memory_budget_bytes,
    )
    try:
        with KeyLocks(store.directory).hold(job.key, job.lock_timeout_s) as locked:
            if locked and (
                store.has_index(job.key) or store.lookup(job.key).kind is EntryKind.NEGATIVE
            ):
                return STORED  # another worker's indexer got there first
            result = filler.fill(job.key, job.relpath)
    finally:
        sink.flush(force=True)
        store.close()
    if result.loose_index is not None:
        result.loose_index.unlink(missing_ok=True)
        return LOOSE
    return UNKNOWN if result.outcome == "unknown" else STORED


def _die_with(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)  # the worker died before PDEATHSIG was armed


def _limit_data(memory_budget_bytes: int) -> None:
    """A backstop under the size check of fill.py: the budget, and never less than this
    process already uses plus its start-up (a budget too small to start is the size check's
    to refuse, with a note)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            data_kib = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
    except (OSError, StopIteration, ValueError, IndexError):
        data_kib = 0
    limit = max(memory_budget_bytes, data_kib * 1024 + _START_UP_BYTES) + _DATA_SLACK_BYTES
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    except (ValueError, OSError) as exc:
        log.warning("cannot limit the indexer's memory: %s", exc)


def main() -> int:
    stdin = sys.stdin.buffer
    sys.path[:] = pickle.load(stdin)  # the worker's, so that its codec and suppliers import
    job: FillJob = pickle.load(stdin)
    _die_with(job.parent_pid)
    if job.memory_budget_bytes is not None:
        _limit_data(job.memory_budget_bytes)
    try:
        from setproctitle import setproctitle

        setproctitle(f"procsupervisor: indexer [{job.key[:60]}]")
    except ImportError:
        pass
    try:
        return run_job(job)
    except MemoryError:
        log.error("indexing %s ran out of its memory limit", job.key)
        return 1
    except Exception:
        log.exception("background indexing of %s failed", job.key)
        return 1


if __name__ == "__main__":
    sys.exit(main())
