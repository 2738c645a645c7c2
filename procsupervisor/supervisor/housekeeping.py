"""What the supervisor loop does for the outside world every turn, besides crashes: systemd
readiness and watchdog pings, and the gauges an operator graphs (docs/operations.md,
"Running as a service" and "Metrics").

- `READY=1` once every wanted worker is up (not before: systemd then starts what depends on
  the service), `RELOADING=1` ... `READY=1` around a reload, `STOPPING=1` when a stop begins.
- `WATCHDOG=1` from the loop itself, so a loop that hangs stops pinging and systemd restarts
  the service.
- Every `gauge_interval_s` (also when idle): queue depths, dead letters, workers busy / up /
  wanted, worker restarts, in-flight crashes, throughput, uptime and a heartbeat counter, sent
  as one statsd batch; and a one-line STATUS for `systemctl status`.

- With `[supervisor] metrics_listen`, the same figures as a Prometheus text endpoint on a
  loopback port (prometheus.py), served from the loop's selector: a connection is registered
  as `("call", callback)`, which the loop calls when it is readable.

Everything is computed from the supervisor's own `status()`, the same figures `procsupervisor
status` shows, so graphs and the status table never disagree.
"""

from __future__ import annotations

import logging
import selectors
from collections.abc import Callable, Mapping
from typing import Any

from procsupervisor.logs import log_event
from procsupervisor.metrics import Metrics, NullMetrics, batched
from procsupervisor.sdnotify import Notifier
from procsupervisor.supervisor.prometheus import MetricsEndpoint, exposition

log = logging.getLogger("procsupervisor.supervisor")

DEFAULT_GAUGE_INTERVAL_S = 5.0


class Housekeeping:
    def __init__(self, notifier: Notifier, gauge_interval_s: float = DEFAULT_GAUGE_INTERVAL_S
                 ) -> None:
        self.notifier = notifier
        self.gauge_interval_s = gauge_interval_s
        self.ready_sent = False
        self._next_report = 0.0
        self.endpoint: MetricsEndpoint | None = None
        self._io_selector: selectors.BaseSelector | None = None

    def turn(
        self,
        now: float,
        *,
        workers_up: bool,
        metrics: Metrics,
        status: Callable[[], dict[str, Any]],
    ) -> None:
        """Once per loop turn; cheap unless a report is due."""
        if not self.ready_sent and workers_up:
            self.ready_sent = True
            self.notifier.ready("processing")
            log_event(log, logging.INFO, "supervisor ready", systemd=self.notifier.enabled)
        self.notifier.ping_watchdog(now)
        if self.endpoint is not None:
            for fd in self.endpoint.expire():
                self._unwatch(fd)
        if now < self._next_report:
            return
        self._next_report = now + self.gauge_interval_s
        if isinstance(metrics, NullMetrics) and not self.notifier.enabled:
            return  # nobody listens: skip building the status
        snapshot = status()
        with batched(metrics):
            for name, value in gauges(snapshot).items():
                metrics.gauge(name, value)
            metrics.incr("supervisor.heartbeat")
        if self.ready_sent:
            self.notifier.status(status_line(snapshot))

    # -- the Prometheus endpoint ----------------------------------------------------------------

    def open_metrics_endpoint(self, listen: str, io_selector: selectors.BaseSelector,
                              status: Callable[[], dict[str, Any]]) -> None:
        if not listen:
            return

        def render() -> str:
            snapshot = status()
            return exposition(gauges(snapshot), snapshot)

        self.endpoint = MetricsEndpoint(listen, render)
        self._io_selector = io_selector
        io_selector.register(self.endpoint.listener, selectors.EVENT_READ, ("call", self._accept))
        log_event(log, logging.INFO, "prometheus endpoint listening",
                  address=":".join(map(str, self.endpoint.address)))

    def _accept(self) -> None:
        assert self.endpoint is not None and self._io_selector is not None
        sock = self.endpoint.accept()
        if sock is not None:
            fd = sock.fileno()
            self._io_selector.register(fd, selectors.EVENT_READ, ("call", lambda: self._read(fd)))

    def _read(self, fd: int) -> None:
        assert self.endpoint is not None and self._io_selector is not None
        data = self._io_selector.unregister(fd).data  # closed when answered: unwatch it first
        if not self.endpoint.readable(fd):
            self._io_selector.register(fd, selectors.EVENT_READ, data)

    def _unwatch(self, fd: int) -> None:
        if self._io_selector is not None:
            try:
                self._io_selector.unregister(fd)
            except (KeyError, ValueError):
                pass

    def close(self) -> None:
        if self.endpoint is not None:
            if self._io_selector is not None:
                for fd in [*self.endpoint.connections, self.endpoint.listener.fileno()]:
                    self._unwatch(fd)
            self.endpoint.close()
            self.endpoint = None
        self.notifier.close()

    # -- systemd ----------------------------------------------------------------------------

    def reloading(self) -> None:
        self.notifier.reloading()

    def reloaded(self) -> None:
        """After a reload, failed or not: systemd waits for READY=1 to end the reload."""
        if self.ready_sent:
            self.notifier.ready("processing")

    def stopping(self) -> None:
        self.ready_sent = True  # never READY=1 after STOPPING=1
        self.notifier.stopping()


def gauge_interval_s(statsd_options: Mapping[str, str]) -> float:
    """[statsd] gauge_interval_s: seconds between gauge reports (at least 1)."""
    text = (statsd_options.get("gauge_interval_s") or "").strip()
    try:
        return max(1.0, float(text)) if text else DEFAULT_GAUGE_INTERVAL_S
    except ValueError:
        raise ValueError(f"[statsd] gauge_interval_s: {text!r} is not a number")


def gauges(status: Mapping[str, Any]) -> dict[str, float]:
    """The gauges of one status snapshot. Names carry the queue (not a tag), so plain statsd
    daemons, which drop tags, keep the queues apart."""
    workers = status.get("workers") or []
    up = [w for w in workers if w.get("state") in ("idle", "busy") and not w.get("retiring")]
    found: dict[str, float] = {
        "supervisor.workers.busy": sum(1 for w in workers if w.get("state") == "busy"),
        "supervisor.workers.up": len(up),
        "supervisor.workers.total": len(workers),
        "supervisor.workers.target": status.get("target_workers", 0),
        "supervisor.workers.restarts": status.get("worker_restarts", 0),
        "supervisor.in_flight": status.get("in_flight", 0),
        "supervisor.poison_pending": status.get("poison_pending", 0),
        "supervisor.uptime_s": round(float(status.get("uptime_s", 0.0)), 1),
        "supervisor.draining": 1 if status.get("draining") else 0,
    }
    for queue, depth in (status.get("queue_depths") or {}).items():
        if queue != "deadletter":  # RabbitMQ's depths include it; sent once, below
            found[f"supervisor.queue_depth.{queue}"] = depth
    if status.get("dead_letters") is not None:
        found["supervisor.queue_depth.deadletter"] = status["dead_letters"]
    totals = status.get("totals") or {}
    if "per_s" in totals:
        found["supervisor.crashes_per_s"] = totals["per_s"]
    health = status.get("health")
    if health:
        found["supervisor.degraded"] = 1 if health.get("state") == "degraded" else 0
        found["supervisor.pulling"] = 1 if health.get("pulling") else 0
        # Backend names ("destination postgres") become "destination_postgres" in the name.
        for backend, row in (health.get("backends") or {}).items():
            if row.get("breaker") is not None:
                key = backend.replace(" ", "_")
                found[f"supervisor.breaker_open.{key}"] = 1 if row["breaker"] == "open" else 0
    return found


def status_line(status: Mapping[str, Any]) -> str:
    """One line for `systemctl status`."""
    workers = status.get("workers") or []
    busy = sum(1 for w in workers if w.get("state") == "busy")
    totals = status.get("totals") or {}
    waiting = sum(v for k, v in (status.get("queue_depths") or {}).items() if k != "deadletter")
    return (
        f"{busy}/{status.get('target_workers', 0)} workers busy, {waiting} queued,"
        f" {status.get('dead_letters') or 0} dead letters, processed {totals.get('processed', 0)}"
        f" ({totals.get('per_s', 0)}/s)" + (", draining" if status.get("draining") else "")
    )
