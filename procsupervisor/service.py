"""Running `start` as a service (docs/operations.md, "Running as a service"): log file, pidfile,
privilege drop, systemd notifications, and waiting for a supervisor to exit.

`start` prepares, in this order and as the user that launched it: the log file (stderr itself
is moved onto it, so the workers, which keep only their stdio descriptors, log there too), the
pidfile, the data directory's lock, and the control socket (bound now, so it may live in a
directory only root can write). Then it drops to `--user`/`--group`, and only then is the
supervisor built: its queues and data files are created as that user, never as root.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procsupervisor.logs import log_event
from procsupervisor.sdnotify import Notifier
from procsupervisor.supervisor.control import ControlServer

log = logging.getLogger("procsupervisor.service")

LOG_FILE_MODE = 0o640
WAIT_POLL_S = 0.05


class ServiceError(Exception):
    """A service option cannot be honoured (unknown user, not root, unwritable pidfile)."""


@dataclass(frozen=True)
class ServiceOptions:
    pidfile: Path | None = None
    log_file: Path | None = None
    user: str | None = None
    group: str | None = None


class Service:
    """What `start` prepared for the supervisor: the notifier, the pre-bound control server,
    and the log file to reopen on reload."""

    def __init__(self, options: ServiceOptions, notifier: Notifier | None = None) -> None:
        self.options = options
        self.notifier = notifier if notifier is not None else Notifier.from_environment()
        self.control: ControlServer | None = None
        self.lock_fd: int | None = None
        self._created_data_dir = False
        self._pidfile_pid: int | None = None

    # -- before the supervisor exists (as the launching user) ----------------------------------

    def open_log(self) -> None:
        """Move stderr onto the log file (appending), if one is configured."""
        if self.options.log_file is not None:
            _redirect_stderr(self.options.log_file)

    def write_pidfile(self) -> None:
        path = self.options.pidfile
        if path is None:
            return
        pid = os.getpid()
        tmp = path.with_name(f".{path.name}.{pid}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{pid}\n", encoding="ascii")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # a reader never sees a half-written pid
        except OSError as exc:
            raise ServiceError(f"cannot write pidfile {path}: {exc.strerror or exc}")
        self._pidfile_pid = pid

    def lock_and_bind(self, data_dir: Path, socket_path: Path, data_access: str) -> None:
        """Take the data directory's lock (creating or narrowing it for `data_access`), then
        bind the control socket; the supervisor takes both over (`take_prepared`) and installs
        its request handler when it runs."""
        from procsupervisor.supervisor.arbiter import lock_data_dir

        self._created_data_dir = not data_dir.exists()
        self.lock_fd = lock_data_dir(data_dir, data_access)
        self.control = ControlServer(socket_path, _not_running_yet)

    def take_prepared(self) -> tuple[int | None, ControlServer | None]:
        """Hand the lock and the control socket to the supervisor, which closes them."""
        taken = (self.lock_fd, self.control)
        self.lock_fd, self.control = None, None
        return taken

    def drop_privileges(self, data_dir: Path) -> None:
        """Become --user/--group for good. The control socket is handed to that user (so it
        can run `procsupervisor status` itself), and so are the lock file and a data directory
        this start created; an existing data directory must already be writable by it."""
        if self.options.user is None and self.options.group is None:
            return
        uid, gid, groups = resolve_identity(self.options.user, self.options.group)
        if os.geteuid() != 0:
            if (uid, gid) == (os.getuid(), os.getgid()):
                return  # already that user: nothing to drop
            raise ServiceError("--user/--group need root (start as root, or leave them out)")
        if self.control is not None:
            os.chown(self.control.path, uid, gid)
        if self.lock_fd is not None:
            # The data directory is the service user's: a later start as that user (without
            # root) must be able to take the lock and write the spool.
            os.fchown(self.lock_fd, uid, gid)
            if self._created_data_dir:
                os.chown(data_dir, uid, gid)  # created by this start, for this user
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - the kernel refused to drop: never run on as root
            raise ServiceError("privileges could not be dropped")
        entry = pwd.getpwuid(uid)
        os.environ.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
        if not os.access(data_dir, os.W_OK | os.X_OK):
            raise ServiceError(
                f"data directory {data_dir} is not writable by user {entry.pw_name}"
                " (chown it to that user, or let systemd's StateDirectory= create it)"
            )
        log_event(log, logging.INFO, "privileges dropped", user=entry.pw_name, uid=uid, gid=gid)

    # -- while the supervisor runs ---------------------------------------------------------------

    def reopen_log(self) -> None:
        """On reload: reopen the log file (after a rotation moved it away). If it cannot be
        opened (a directory only root may write), logging goes on into the old file."""
        if self.options.log_file is None:
            return
        try:
            _redirect_stderr(self.options.log_file)
        except OSError as exc:
            log_event(log, logging.WARNING, "log file not reopened, still writing the old one",
                      log_file=str(self.options.log_file), error=str(exc))

    def close(self) -> None:
        """At exit: remove the pidfile if it is still ours (a later start may own it); close
        the control socket if the supervisor never took it over (it failed to start)."""
        self.notifier.close()
        if self.control is not None:
            self.control.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
        path = self.options.pidfile
        if path is None or self._pidfile_pid is None:
            return
        try:
            if path.read_text(encoding="ascii").strip() == str(self._pidfile_pid):
                path.unlink()
        except OSError:
            pass  # already gone, or its directory is root's after a privilege drop


def resolve_identity(user: str | None, group: str | None) -> tuple[int, int, list[int]]:
    """uid, gid and supplementary groups for --user/--group (names or numbers). The group
    defaults to the user's primary group."""
    try:
        entry = _user_entry(user) if user is not None else pwd.getpwuid(os.getuid())
    except KeyError:
        raise ServiceError(f"unknown user {user!r}")
    try:
        gid = _group_id(group) if group is not None else entry.pw_gid
    except KeyError:
        raise ServiceError(f"unknown group {group!r}")
    groups = sorted(set(os.getgrouplist(entry.pw_name, gid))) if user is not None else [gid]
    return entry.pw_uid, gid, groups


def _user_entry(user: str) -> Any:
    return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)


def _group_id(group: str) -> int:
    return grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid


def _redirect_stderr(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
    try:
        os.dup2(fd, 2)  # dup2 clears close-on-exec on the copy: children keep stderr
    finally:
        os.close(fd)


def _not_running_yet(request: dict[str, Any]) -> dict[str, Any]:
    return {"ok": False, "error": "the supervisor is still starting"}


# -- waiting for a supervisor to exit (`stop --wait`) ------------------------------------------


def process_gone(pid: int) -> bool:
    """True once `pid` has exited. A zombie (exited, not yet reaped by its parent) counts as
    gone: it holds no locks, descriptors or workers any more."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return True
    except OSError:
        return _signal_says_gone(pid)
    state = stat.rsplit(b")", 1)[-1].split()[:1]
    return state in ([b"Z"], [b"X"])


def _signal_says_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def wait_for_exit(pid: int, timeout_s: float | None = None) -> bool:
    """Wait until `pid` has exited; False if it is still running after `timeout_s`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not process_gone(pid):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(WAIT_POLL_S)
    return True
