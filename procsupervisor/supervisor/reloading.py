"""Reloading the configuration (SIGHUP or the `reload` command, docs/architecture.md §3): the
reload half of the supervisor, kept apart from its loop.

A reloaded configuration replaces the running one only once a worker started with it in a
throwaway child (`ReloadCheck`, procsupervisor/worker_probe.py), so a config every worker would
die on never retires the healthy workers: the reply waits for that trial. Either way the log
file is reopened (after a rotation) and systemd hears the reload begin and end.
"""

from __future__ import annotations

import logging
import selectors
from typing import TYPE_CHECKING, Any

from procsupervisor import config as config_module
from procsupervisor import data_access
from procsupervisor.backends import make_metrics, make_queue
from procsupervisor.config import Config, ConfigError
from procsupervisor.logs import log_event, set_level
from procsupervisor.supervisor.control import PendingReply
from procsupervisor.supervisor.housekeeping import gauge_interval_s
from procsupervisor.supervisor.reload_check import RELOAD_PROBE_TIMEOUT_S, ReloadCheck
from procsupervisor.worker_probe import WorkerStartProbe

if TYPE_CHECKING:
    from procsupervisor.metrics import Metrics
    from procsupervisor.service import Service
    from procsupervisor.supervisor.dispatcher import Dispatcher
    from procsupervisor.supervisor.health_monitor import HealthMonitor
    from procsupervisor.supervisor.housekeeping import Housekeeping
    from procsupervisor.supervisor.pool import WorkerPool

log = logging.getLogger("procsupervisor.supervisor")


class Reloading:
    """Mixed into `Supervisor`: reload works on the supervisor's own parts."""

    config: Config
    service: Service | None
    metrics: Metrics
    dispatcher: Dispatcher
    health: HealthMonitor
    housekeeping: Housekeeping
    pool: WorkerPool
    io_selector: selectors.BaseSelector
    reload_check: ReloadCheck | None
    reloads: int
    last_reload_error: str | None
    workers: int
    draining: bool
    hard_stop: bool

    def reload(self) -> dict[str, Any] | PendingReply:
        """Re-read the config and start one worker with it in a throwaway child; only if that
        works does it replace the running config (answered when the trial is over). On any
        error keep running as before and report it."""
        self.housekeeping.reloading()
        if self.service is not None:
            self.service.reopen_log()
        if self.reload_check is None:  # else this request waits for the trial under way
            old = self.config
            try:
                new = config_module.load(old.path, data_dir=old.data_dir, overrides=old.overrides)
                probe = WorkerStartProbe(new)
            except (ConfigError, OSError, ValueError) as exc:
                reply = self._reload_failed(str(exc))
                self._reload_over()
                return reply
            self.reload_check = ReloadCheck(new, probe, probe.fileno())
            self.io_selector.register(probe.fileno(), selectors.EVENT_READ, ("probe", None))
        return self.reload_check.reply_later()

    def _settle_reload_check(self, now: float) -> None:
        """Apply or refuse the reloaded config once its trial worker start has answered."""
        check = self.reload_check
        if check is None:
            return
        outcome = check.probe.result()
        if outcome is None:
            if not check.probe.expired(now, RELOAD_PROBE_TIMEOUT_S):
                return
            outcome = check.probe.give_up(f"no worker ready within {RELOAD_PROBE_TIMEOUT_S:g}s")
        try:
            self.io_selector.unregister(check.fd)
        except (KeyError, ValueError):
            pass
        self.reload_check = None
        if outcome:
            reply = self._reload_failed(f"new workers cannot start: {outcome}")
        else:
            reply = self._apply_reload(check.config)
        self._reload_over()
        for pending in check.replies:
            pending.send(reply)

    def _reload_over(self) -> None:
        """Tell systemd the reload ended (failed or not), unless the supervisor is stopping:
        READY=1 never follows STOPPING=1."""
        if not (self.draining or self.hard_stop):
            self.housekeeping.reloaded()

    def _reload_failed(self, error: str) -> dict[str, Any]:
        self.last_reload_error = error
        log_event(log, logging.ERROR, "reload failed, keeping the running config", error=error)
        return {"ok": False, "error": error}

    def _apply_reload(self, new: Config) -> dict[str, Any]:
        old = self.config
        new_metrics = None
        try:
            interval_s = gauge_interval_s(new.statsd)
            new_metrics = make_metrics(new) if new.statsd != old.statsd else None
            new_queue = None
            if new.queue != old.queue:
                new_queue = make_queue(new, new_metrics or self.metrics)
        except (ConfigError, OSError, ImportError, ValueError) as exc:
            if new_metrics is not None:  # made for a config that is not taking over
                new_metrics.close()
            return self._reload_failed(str(exc))
        if new.supervisor.socket != old.supervisor.socket:
            log_event(log, logging.WARNING, "control socket path changes only on restart",
                      socket=str(old.supervisor.socket))
        if new_metrics is not None:
            self.metrics.close()
            self.metrics = new_metrics
        self.dispatcher.reconfigure(new, self.metrics, new_queue)
        self.health.reconfigure(new, self.metrics)
        self.config = new
        self.reloads += 1
        self.last_reload_error = None
        if new.supervisor.workers != old.supervisor.workers:
            self.workers = new.supervisor.workers  # the file changed it: the file wins
        # else a `scale` since the last load stays in force
        self.housekeeping.gauge_interval_s = interval_s
        set_level(new.log_level)
        data_access.apply(new.supervisor.data_access)  # inherited by the new workers
        self.pool.new_generation(new)  # every worker is replaced by one of the new generation
        log_event(log, logging.INFO, "reloaded", generation=self.pool.generation,
                  workers=self.workers, log_level=new.log_level)
        return {"ok": True, "generation": self.pool.generation}
