"""What every child the supervisor forks does first (workers and the throwaway probe child):
drop what it inherited from the supervisor and arrange to die with it (docs/architecture.md §2).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
# Signals meant for the supervisor that a terminal may also send to the whole process group:
# a child ignores them and finishes its work; the supervisor decides what happens.
IGNORED_SIGNALS = (
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def detach_from_supervisor(keep_fd: int, supervisor_pid: int | None = None) -> None:
    """Reset the supervisor's signal handling and close every inherited descriptor but stdio
    and `keep_fd`; then die with the supervisor (and exit at once if it is already gone, when
    its pid is given)."""
    signal.set_wakeup_fd(-1)
    for signum in IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    # Nothing with a socket crosses a fork: close every inherited descriptor (broker connection,
    # control socket, other workers' pipes, the supervisor's lock). The supervisor's objects stay
    # referenced in this process until os._exit, so none of them is ever finalized here and
    # closes a descriptor number we reuse.
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd > 2 and fd != keep_fd:
            try:
                os.close(fd)
            except OSError:
                pass
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if supervisor_pid is not None and os.getppid() != supervisor_pid:
        os._exit(1)  # the supervisor died before PDEATHSIG was armed
