"""Per-key single-flight locks shared by every process using a cache directory.

One `flock`ed file per key under `<cache_dir>/locks/`. The kernel drops a lock when its holder
exits, so a worker killed mid-download never blocks the others; waiting is bounded so a stuck
holder only costs the waiters their timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_DIR_NAME = "locks"
LOCK_SUFFIX = ".lock"
_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.1


class KeyLocks:
    def __init__(self, cache_dir: Path) -> None:
        self.directory = Path(cache_dir) / LOCK_DIR_NAME
        self.directory.mkdir(mode=0o700, exist_ok=True)

    def path_for(self, key: str) -> Path:
        # Hashing keeps hostile debug file names out of the file system.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.directory / f"{digest}{LOCK_SUFFIX}"

    @contextlib.contextmanager
    def hold(self, key: str, timeout_s: float) -> Iterator[bool]:
        """Hold `key`'s lock for the block; yields False (without the lock) on timeout."""
        fd = os.open(self.path_for(key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            yield _acquire(fd, timeout_s)
        finally:
            os.close(fd)  # releases the lock if held

    def remove_idle(self) -> int:
        """Delete lock files nobody holds (for `cache prune`); returns how many.

        A process that opened a file just before it is removed may lock the orphan while a
        newcomer locks a fresh file: at worst one duplicate download, never a wrong result.
        """
        removed = 0
        for path in self.directory.glob(f"*{LOCK_SUFFIX}"):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed


def _acquire(fd: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + max(0.0, timeout_s)
    pause = _POLL_FIRST_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX_S)
