"""Who may read the data directory (docs/architecture.md §11): raw crashes carry URLs, e-mail
addresses and process memory, so by default everything procsupervisor creates is owner-only.

`[supervisor] data_access` is `owner` (directories 0700, files 0600) or `group` (0750 / 0640,
for an operator group that reads crashes). It works through the process umask, set by every
command before it creates anything (`apply`) and inherited by the supervisor's workers, so
the spool, the crash store, the symbol cache's database and anything a backend writes follow
it without each of them knowing. A data directory left wider by an older version is narrowed
at start when it belongs to us.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from procsupervisor.logs import log_event

log = logging.getLogger("procsupervisor")

UMASKS = {"owner": 0o077, "group": 0o027}
DEFAULT_ACCESS = "owner"


def umask_for(access: str) -> int:
    return UMASKS[access]


def apply(access: str) -> None:
    """Set the process umask for `access` (a validated `[supervisor] data_access`)."""
    os.umask(umask_for(access))


def prepare_data_dir(data_dir: Path, access: str) -> None:
    """Create the data directory under the umask of `access`, or narrow an existing one of
    ours that is wider than `access` allows."""
    umask = umask_for(access)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o777 & ~umask)
    info = data_dir.stat()
    too_wide = stat.S_IMODE(info.st_mode) & umask
    if too_wide and info.st_uid == os.getuid():
        narrowed = stat.S_IMODE(info.st_mode) & ~umask
        os.chmod(data_dir, narrowed)
        log_event(log, logging.WARNING, "data directory was readable by others; narrowed",
                  data_dir=str(data_dir), was=oct(stat.S_IMODE(info.st_mode)),
                  now=oct(narrowed), data_access=access)
