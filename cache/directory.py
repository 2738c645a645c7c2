"""Create and vet the cache directory.

Anyone who can write the cache directory decides what every worker loads, so it must belong to
us and be writable by nobody else (docs/architecture.md §9).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from procsupervisor.cache.errors import CacheDirectoryError

DIRECTORY_MODE = 0o700


def secure_cache_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with mode 0700 if needed, then refuse it unless it is
    a real directory owned by the current user and not group- or world-writable."""
    path = Path(path)
    try:
        path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheDirectoryError(f"cannot create symbol cache directory {path}: {exc}") from exc
    check_cache_dir(path)
    return path


def check_cache_dir(path: Path) -> None:
    """Raise CacheDirectoryError if `path` is not a safe cache directory."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise CacheDirectoryError(f"symbol cache directory {path} is unusable: {exc}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise CacheDirectoryError(f"symbol cache directory {path} is a symbolic link; refusing it")
    if not stat.S_ISDIR(info.st_mode):
        raise CacheDirectoryError(f"symbol cache path {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise CacheDirectoryError(
            f"symbol cache directory {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); refusing it"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirectoryError(
            f"symbol cache directory {path} is group- or world-writable "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); refusing it (chmod 700 it)"
        )
