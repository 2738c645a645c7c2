"""Backend health as the supervisor sees it, and the circuit breaker (docs/architecture.md §5).

Every backend has a row: the queue (whose own client reconnects with backoff and reports its
state), the source, each destination and each symbol supplier. Rows change three ways:

- **at start**, one probe of everything: a misconfigured backend refuses the start; an
  unreachable one lets the supervisor start *degraded*, its breaker already open;
- **a crash's outcome**: `unavailable` from a worker names the source or destination that
  failed it; that backend's breaker opens and the supervisor stops pulling. A crash that went
  through proves the source and every destination healthy;
- **probes** of every backend that is down, run in a throwaway child (prober.py) with growing
  pauses (0.5 s, 1 s, 2 s, ... up to `probe_max_interval_s`); a healthy answer closes the
  breaker and pulling resumes.

Symbol suppliers never open the breaker (crashes are still processed, with fewer symbols); a
supplier that is down still makes the supervisor degraded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from procsupervisor.health import Health, HealthStatus, backend_name
from procsupervisor.logs import log_event
from procsupervisor.metrics import Metrics
from procsupervisor.supervisor.prober import Prober, ProbeResults

if TYPE_CHECKING:
    from procsupervisor.config import Config
    from procsupervisor.queues.base import CrashQueue

log = logging.getLogger("procsupervisor.supervisor")

PROBE_FIRST_DELAY_S = 0.5
GUARDED_ROLES = ("source", "destination")  # backends every crash needs: their outage stops pulling
UNKNOWN_BACKEND = "destination (unnamed)"


@dataclass
class BackendState:
    name: str  # "destination postgres"
    health: Health
    breaker_open: bool = False
    opened_at: float | None = None  # monotonic
    failed_probes: int = 0
    next_probe_at: float | None = None  # None: no probe wanted
    times_opened: int = 0
    guarded: bool = False  # every crash needs it: its outage opens the breaker

    def __post_init__(self) -> None:
        self.guarded = self.guarded or self.name.split(" ", 1)[0] in GUARDED_ROLES

    @property
    def tags(self) -> dict[str, str]:
        """Metric tags: `role:destination,backend:postgres` (tag values hold no spaces)."""
        role, _, backend = self.name.partition(" ")
        return {"role": role, "backend": backend.replace(" ", "_")}


class HealthMonitor:
    def __init__(self, config: Config, metrics: Metrics, prober: Prober | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.prober = prober or Prober()
        self.backends: dict[str, BackendState] = {}
        self._probe_everything = False  # after a reload: learn the new set of backends

    @property
    def queue_name(self) -> str:
        return backend_name("queue", self.config.queue_backend)

    # -- start ---------------------------------------------------------------------------------

    def check_at_start(self, queue: CrashQueue) -> list[str]:
        """Probe every backend once. Returns a line per misconfigured backend (the start must
        be refused); unreachable ones are logged and start with their breaker open."""
        now = time.monotonic()
        results = self.prober.run_now(self.config)
        if results.failure:
            log_event(log, logging.ERROR, "backend probes failed at start", error=results.failure)
        healths = {self.queue_name: queue.probe(), **results.healths}
        refused = [health.line(name) for name, health in healths.items()
                   if health.status is HealthStatus.MISCONFIGURED]
        if refused:
            return refused
        for name, health in results.healths.items():
            self.backends[name] = BackendState(name, Health.healthy())
            if not health.ok:
                self._down(self.backends[name], health, now, opened_by="start")
        for name, health in healths.items():
            if not health.ok:
                log_event(log, logging.WARNING, "backend unreachable, starting degraded",
                          backend=name, cause=health.cause)
        return []

    # -- what crashes say ----------------------------------------------------------------------

    def crash_unavailable(self, name: str | None, reason: str, now: float) -> None:
        """A worker could not process a crash because `name` failed: open its breaker."""
        state = self._state(name or UNKNOWN_BACKEND)
        state.guarded = True  # whatever its name, crashes fail without it
        if state.breaker_open:
            return
        health = state.health if not state.health.ok else Health.unreachable(reason)
        self._down(state, health, now, opened_by="crash")
        state.next_probe_at = now  # a blip closes the breaker again at once

    def crash_succeeded(self, now: float) -> None:
        """A crash was read from the source and saved everywhere: they all answer."""
        for state in self.backends.values():
            if state.guarded and (state.breaker_open or not state.health.ok):
                self._up(state, now, evidence="a crash went through")

    def allow_pull(self) -> bool:
        return not any(state.breaker_open for state in self.backends.values())

    # -- probing -------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Every loop turn: apply finished probes, start the next due ones."""
        results = self.prober.collect(now)
        if results is not None:
            self._apply(results, now)
        if self.prober.busy:
            return
        due = [state.name for state in self.backends.values()
               if state.next_probe_at is not None and state.next_probe_at <= now]
        if not (due or self._probe_everything):
            return
        try:
            self.prober.start(self.config, None if self._probe_everything else due)
        except OSError as exc:  # no fork now (process limit): try again a little later
            log_event(log, logging.WARNING, "cannot start a backend probe", error=str(exc))
            for name in due:
                self.backends[name].next_probe_at = now + PROBE_FIRST_DELAY_S
            return
        self._probe_everything = False

    def _apply(self, results: ProbeResults, now: float) -> None:
        if results.requested is None and results.failure is None:
            # A full probe (after a reload): backends no longer configured leave the table.
            for name in set(self.backends) - set(results.healths):
                self._forget(name, now)
        for name in results.requested or ():
            if name not in results.healths and name in self.backends:
                self._forget(name, now)
        for name, health in results.healths.items():
            state = self._state(name)
            if health.ok:
                if state.breaker_open or not state.health.ok:
                    self._up(state, now, evidence="probe")
                continue
            if state.guarded and not state.breaker_open:
                # Found down by a probe that was under way when a crash went through.
                self._down(state, health, now, opened_by="probe")
            changed = health != state.health
            state.health = health
            state.failed_probes += 1
            delay = min(self.config.supervisor.probe_max_interval_s,
                        PROBE_FIRST_DELAY_S * 2 ** (state.failed_probes - 1))
            state.next_probe_at = now + delay
            log_event(log, logging.WARNING if changed else logging.INFO, "backend still down",
                      backend=name, status=health.status, cause=health.cause,
                      failed_probes=state.failed_probes, next_probe_s=round(delay, 3))

    def _down(self, state: BackendState, health: Health, now: float, opened_by: str) -> None:
        state.health = health
        state.failed_probes = 0
        state.next_probe_at = now + PROBE_FIRST_DELAY_S
        if not state.guarded or state.breaker_open:
            return
        state.breaker_open = True
        state.opened_at = now
        state.times_opened += 1
        log_event(log, logging.WARNING, "breaker open: pulling stopped", backend=state.name,
                  status=health.status, cause=health.cause, opened_by=opened_by)
        self.metrics.incr("supervisor.breaker.opened", tags=state.tags)
        self.metrics.gauge("supervisor.breaker.open", 1, tags=state.tags)

    def _up(self, state: BackendState, now: float, evidence: str) -> None:
        was_open = state.breaker_open
        open_s = now - state.opened_at if state.opened_at is not None else 0.0
        state.health = Health.healthy()
        state.breaker_open = False
        state.opened_at = None
        state.failed_probes = 0
        state.next_probe_at = None
        if was_open:
            log_event(log, logging.WARNING, "breaker closed: pulling resumed", backend=state.name,
                      open_s=round(open_s, 3), evidence=evidence)
            self.metrics.gauge("supervisor.breaker.open", 0, tags=state.tags)
        else:
            log_event(log, logging.INFO, "backend healthy again", backend=state.name,
                      evidence=evidence)

    def _forget(self, name: str, now: float) -> None:
        state = self.backends.get(name)
        if state is not None and state.breaker_open:
            self._up(state, now, evidence="no longer configured")
        self.backends.pop(name, None)

    def _state(self, name: str) -> BackendState:
        return self.backends.setdefault(name, BackendState(name, Health.healthy()))

    # -- reload, status, shutdown --------------------------------------------------------------

    def reconfigure(self, config: Config, metrics: Metrics) -> None:
        """After a reload: the backends may have changed; probe them all again."""
        self.config = config
        self.metrics = metrics
        self._probe_everything = True

    def status(self, now: float, queue: CrashQueue) -> dict[str, Any]:
        rows: dict[str, dict[str, Any]] = {
            self.queue_name: {**queue.health().to_json(), "breaker": None}
        }
        for name, state in self.backends.items():
            rows[name] = {
                **state.health.to_json(),
                "breaker": ("open" if state.breaker_open else "closed") if state.guarded else None,
                "open_s": round(now - state.opened_at, 3) if state.opened_at is not None else None,
                "failed_probes": state.failed_probes,
                "next_probe_s": (round(max(0.0, state.next_probe_at - now), 3)
                                 if state.next_probe_at is not None else None),
                "times_opened": state.times_opened,
            }
        degraded = any(row["status"] != HealthStatus.HEALTHY for row in rows.values())
        degraded = degraded or not self.allow_pull()
        return {
            "state": "degraded" if degraded else "healthy",
            "pulling": self.allow_pull(),
            "backends": rows,
        }

    def close(self) -> None:
        self.prober.close()
