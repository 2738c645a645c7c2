"""Symbol misses indexed off the crash path (DESIGN.md §9): each one in a child process.

A worker that misses a module starts a child (or finds its own still running) that fetches and
indexes the module into the shared cache (fill.py), and waits for it at most what is left of
the crash's wait budget; then the crash is walked without that module, with a note, and the
child goes on for the crashes after it. The child's memory is its own, not the worker's: the
worker's resident size (what `worker_max_rss_mb` watches) does not grow with a big file, and
the child is held to the index memory budget by RLIMIT_DATA on top of the size check, so a file
too big is refused once (a negative entry with the reason) instead of killing anyone.

A child dies with its worker (PR_SET_PDEATHSIG), closes every descriptor it inherited, and
leaves through os._exit: it never touches the worker's connections.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

from procsupervisor.cache.fill import resident_bytes

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# Exit codes of a fill child (anything else: it failed unexpectedly, or was killed).
STORED = 0
UNKNOWN = 3  # a supplier failed: nothing stored, ask again after error_retry_s
LOOSE = 4  # built but not storable (bigger than the whole cache)
_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.05
_DATA_SLACK_BYTES = 64 << 20  # allocator rounding on top of the budget


class BackgroundIndexer:
    """Runs `fill(key, relpath) -> exit code` in forked children, one per key at a time."""

    def __init__(
        self, fill: Callable[[str, str], int], memory_budget_bytes: int | None = None
    ) -> None:
        self.fill = fill
        self.memory_budget_bytes = memory_budget_bytes
        self.jobs: dict[str, int] = {}  # key -> pid of its running child
        self.finished: dict[str, int] = {}  # key -> exit code, until asked for

    def start(self, key: str, relpath: str) -> bool:
        """Start indexing `key` unless a child of this worker already is; True if started."""
        self.reap()
        if key in self.jobs:
            return False
        self.finished.pop(key, None)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                _become_indexer(key, self.memory_budget_bytes)
                code = self.fill(key, relpath)
            except BaseException:
                log.exception("background indexing of %s failed", key)
            finally:
                os._exit(code)
        self.jobs[key] = pid
        return True

    def wait(self, key: str, timeout_s: float) -> int | None:
        """The exit code of `key`'s child once it has ended (waiting at most `timeout_s`),
        None while it runs; STORED when no child was started for it."""
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
        """Collect the children that have ended (no zombies left behind)."""
        for key in list(self.jobs):
            self._reap_one(key)

    def _reap_one(self, key: str) -> None:
        pid = self.jobs.get(key)
        if pid is None:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8
        if done:
            del self.jobs[key]
            self.finished[key] = os.waitstatus_to_exitcode(status)


def _become_indexer(key: str, memory_budget_bytes: int | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _close_inherited_descriptors()
    if memory_budget_bytes is not None:
        _limit_data(memory_budget_bytes)
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(f"procsupervisor: indexer [{key[:60]}]")


def _close_inherited_descriptors() -> None:
    # The worker's pipe, sockets and database files stay open in the worker; a copy here
    # would, for one, keep the supervisor from seeing the worker's pipe close. Their Python
    # objects stay referenced until os._exit, so none is ever finalized on a reused number.
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return
    for name in os.listdir(fd_dir):
        fd = int(name)
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _limit_data(memory_budget_bytes: int) -> None:
    """Let the data segment grow by what the budget leaves above the memory held now."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            data_kib = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return
    growth = max(memory_budget_bytes - resident_bytes(), 0)
    limit = data_kib * 1024 + growth + _DATA_SLACK_BYTES
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    except (ValueError, OSError) as exc:
        log.warning("cannot limit the indexer's memory: %s", exc)
