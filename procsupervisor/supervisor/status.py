"""Counters the supervisor keeps for `status`, and the plain-text rendering of a status reply."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

RATE_WINDOW_S = 10.0


@dataclass
class QueueCounters:
    pulled: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0


class Counters:
    def __init__(self, queue_names: Iterable[str]) -> None:
        self.queues: dict[str, QueueCounters] = {q: QueueCounters() for q in queue_names}
        self.processed = 0
        self.failed = 0
        self._completions: deque[float] = deque()

    def queue(self, name: str) -> QueueCounters:
        return self.queues.setdefault(name, QueueCounters())

    def completed(self, ok: bool) -> None:
        if ok:
            self.processed += 1
            now = time.monotonic()
            self._completions.append(now)
            # Trimmed here too, not only when status asks: unasked, the window would grow by
            # one entry per crash for the life of the supervisor.
            self._forget_older_than_window(now)
        else:
            self.failed += 1

    def per_s(self, uptime_s: float) -> float:
        """Crashes processed per second over the last few seconds."""
        self._forget_older_than_window(time.monotonic())
        window = min(RATE_WINDOW_S, max(uptime_s, 1e-3))
        return round(len(self._completions) / window, 2)

    def _forget_older_than_window(self, now: float) -> None:
        while self._completions and now - self._completions[0] > RATE_WINDOW_S:
            self._completions.popleft()

    def snapshot(self, uptime_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
        queues = {name: asdict(c) for name, c in self.queues.items()}
        totals = {
            "processed": self.processed,
            "failed": self.failed,
            "retried": sum(c.retried for c in self.queues.values()),
            "dead_lettered": sum(c.dead_lettered for c in self.queues.values()),
            "per_s": self.per_s(uptime_s),
        }
        return queues, totals


# Figures that describe the one on-disk cache all workers share: every worker reports the same
# value, so summing them would multiply the cache's size by the worker count.
SHARED_CACHE_FIGURES = frozenset({"size_bytes", "entries", "size_limit_bytes"})


# Figures that are a level now (entries in a worker's memory), not a count since start: a
# worker that is gone holds none of them any more.
LEVEL_CACHE_FIGURES = SHARED_CACHE_FIGURES | {"memory_entries", "memory_bytes"}


def add_counters(total: dict[str, Any], stats: Mapping[str, Any]) -> None:
    """Add a departed worker's last cache counters to `total` (levels are left out)."""
    for key, value in stats.items():
        if key in LEVEL_CACHE_FIGURES or not isinstance(value, int | float):
            continue
        if isinstance(value, bool):
            continue
        total[key] = total.get(key, 0) + value


def aggregate_cache_stats(stats: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the per-worker cache counters the workers last reported; take the shared disk
    figures once (the latest, i.e. largest, report)."""
    total: dict[str, Any] = {}
    for one in stats:
        for key, value in one.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if key in SHARED_CACHE_FIGURES:
                total[key] = max(total.get(key, 0), value)
            else:
                total[key] = total.get(key, 0) + value
    return total


def render(status: Mapping[str, Any]) -> str:
    """The status reply as readable tables."""
    lines = [
        f"supervisor pid {status['pid']}  up {status['uptime_s']:.0f}s  "
        f"config {status.get('config') or '(embedded defaults)'}  reloads {status['reloads']}",
        f"workers: target {status['target_workers']}"
        + ("  (draining)" if status.get("draining") else "")
        + (f"  deadline {status['deadline_s']:g}s" if "deadline_s" in status else "")
        + (
            "  weights " + " ".join(f"{q}:{w}" for q, w in status["queue_weights"].items())
            if status.get("queue_weights")
            else ""
        )
        + (f"  log {status['log_level']}" if status.get("log_level") else ""),
    ]
    if status.get("last_reload_error"):
        lines.append(f"last reload failed: {status['last_reload_error']}")
    lines.extend(health_lines(status.get("health")))
    lines.append("")
    lines.append(
        _table(
            ["idx", "pid", "state", "crash id", "busy s", "done", "failed", "restarts", "rss MB"],
            [
                [
                    w["index"],
                    w["pid"],
                    w["state"],
                    w["crash_id"] or "-",
                    f"{w['busy_s']:.1f}",
                    w["processed"],
                    w["failed"],
                    w["restarts"],
                    f"{w['rss_bytes'] / 1048576:.1f}" if w.get("rss_bytes") else "-",
                ]
                for w in status["workers"]
            ],
        )
    )
    lines.append("")
    depths = status.get("queue_depths", {})
    lines.append(
        _table(
            ["queue", "waiting", "pulled", "acked", "retried", "dead-lettered"],
            [
                [name, depths.get(name, "-"), q["pulled"], q["acked"], q["retried"],
                 q["dead_lettered"]]
                for name, q in status["queues"].items()
            ],
        )
    )
    stuck = status.get("stuck_in_flight") or []
    if stuck:
        lines.append("")
        lines.append(f"stuck in flight: {len(stuck)} (the queue could not settle them and"
                     f" keeps trying): {' '.join(stuck[:5])}" + (" ..." if len(stuck) > 5 else ""))
    if status.get("dead_letters") is not None:
        lines.append(f"dead letters waiting: {status['dead_letters']}"
                     + ("  (procsupervisor dead list)" if status["dead_letters"] else ""))
    totals = status["totals"]
    lines.append("")
    lines.append(
        f"totals: processed {totals['processed']}  failed {totals['failed']}  "
        f"retried {totals['retried']}  dead-lettered {totals['dead_lettered']}  "
        f"{totals['per_s']:.1f}/s"
    )
    cache = status.get("symbol_cache") or {}
    if cache:
        lines.extend(_cache_lines(cache))
    return "\n".join(lines)


def health_lines(health: Mapping[str, Any] | None) -> list[str]:
    """`health: healthy`, or the state and one line per backend that is down or breaker-open."""
    if not health:
        return []
    state = str(health.get("state", "unknown"))
    lines = [f"health: {state}" + ("" if health.get("pulling", True) else "  (pulling stopped)")]
    for name, row in (health.get("backends") or {}).items():
        if row.get("status") == "healthy" and row.get("breaker") != "open":
            continue
        parts = [f"  {name}: {row.get('status')}"]
        if row.get("breaker") == "open":
            parts.append(f"breaker open {row.get('open_s') or 0:.0f}s")
        if row.get("failed_probes"):
            parts.append(f"probes failed {row['failed_probes']}")
        if row.get("next_probe_s") is not None:
            parts.append(f"next probe in {row['next_probe_s']:.1f}s")
        if row.get("cause"):
            parts.append(str(row["cause"]))
        lines.append("  ".join(parts))
    return lines


# Cache counters that each mean something went wrong; the table shows their sum (`status --json`
# and `procsupervisor cache stats` have them one by one).
CACHE_TROUBLE_COUNTERS = (
    "corrupt", "errors", "parse_errors", "store_errors", "supplier_errors", "lock_timeouts",
)


def _cache_lines(cache: Mapping[str, Any]) -> list[str]:
    def count(key: str) -> int:
        return int(cache.get(key, 0))

    def mib(key: str) -> str:
        return f"{cache.get(key, 0) / 2**20:.1f}"

    memory_hits, disk_hits = count("memory_hits"), count("disk_hits")
    troubles = sum(count(key) for key in CACHE_TROUBLE_COUNTERS)
    return [
        f"symbol cache: hits {memory_hits + disk_hits} (memory {memory_hits}, disk {disk_hits})"
        f"  misses {count('misses')}  negative hits {count('negative_hits')}"
        f"  downloads {count('downloads')} ({mib('download_bytes')} MiB,"
        f" {cache.get('download_seconds', 0):.1f} s)  parse {cache.get('parse_seconds', 0):.1f} s",
        f"              size {mib('size_bytes')} of {mib('size_limit_bytes')} MiB,"
        f" {count('entries')} entries  evictions {count('evictions')}  errors {troubles}",
    ]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    )
