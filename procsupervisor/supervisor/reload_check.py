"""A reloaded configuration on trial (docs/architecture.md §3): it replaces the running one
only once a worker started with it in a throwaway child (procsupervisor/worker_probe.py), so a
config every worker would die on never retires the healthy workers."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.config import Config
from procsupervisor.supervisor.control import PendingReply
from procsupervisor.worker_probe import WorkerStartProbe

# How long a reload waits for the trial start; within the 30 s a `reload` command waits.
RELOAD_PROBE_TIMEOUT_S = 25.0


@dataclass
class ReloadCheck:
    """The new config, its trial start, and the `reload` requests waiting for the outcome."""

    config: Config
    probe: WorkerStartProbe
    fd: int  # the probe's socket, as registered in the loop's selector
    replies: list[PendingReply] = field(default_factory=list)

    def reply_later(self) -> PendingReply:
        pending = PendingReply()
        self.replies.append(pending)
        return pending
