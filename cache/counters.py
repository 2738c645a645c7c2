"""Per-process symbol cache counters, mirrored to statsd as they change and added to the
host-wide totals in batches."""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import time
import weakref
from dataclasses import asdict, dataclass

from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.metrics import Metrics, NullMetrics

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 5.0

METRIC_PREFIX = "processor.symbolcache"


@dataclass
class CacheCounters:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    negative_hits: int = 0
    # a miss that found the index stored by another worker after waiting for its lock
    peer_fills: int = 0
    downloads: int = 0
    download_bytes: int = 0
    download_seconds: float = 0.0
    parse_seconds: float = 0.0
    parse_errors: int = 0
    evictions: int = 0
    corrupt: int = 0
    supplier_errors: int = 0
    store_errors: int = 0
    lock_timeouts: int = 0
    unsafe_names: int = 0
    # .sym files too big for the index build's memory budget
    refused: int = 0
    # the shared second level: indexes taken from it, rejected (corrupt, foreign), uploaded,
    # and failed requests
    shared_hits: int = 0
    shared_rejected: int = 0
    shared_uploads: int = 0
    shared_errors: int = 0
    # misses handed to a background indexer, and crashes walked without a module's symbols
    # because its indexing outlasted index_wait_s
    background_fills: int = 0
    wait_timeouts: int = 0
    # unexpected failures, each one costing a module its symbols
    errors: int = 0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class CounterSink:
    """Counts locally and sends the same event to statsd."""

    def __init__(
        self, metrics: Metrics | None = None, shared: SharedCounters | None = None
    ) -> None:
        self.metrics: Metrics = metrics or NullMetrics()
        self.counters = CacheCounters()
        self.shared = shared
        self._flushed = CacheCounters()
        self._flushed_at = time.monotonic()
        if shared is not None:
            # Short-lived users (the stackwalk command) would otherwise never reach a flush.
            atexit.register(_flush_at_exit, weakref.ref(self), os.getpid())

    def flush(self, force: bool = False) -> None:
        """Add what changed since the last flush to the shared totals."""
        if self.shared is None:
            return
        now = time.monotonic()
        if not force and now - self._flushed_at < FLUSH_INTERVAL_S:
            return
        current, flushed = self.counters.as_dict(), self._flushed.as_dict()
        deltas = {name: value - flushed[name] for name, value in current.items()}
        self._flushed_at = now
        try:
            self.shared.add(deltas)
        except sqlite3.Error as exc:
            log.debug("cannot update shared symbol cache counters: %s", exc)
            return
        self._flushed = CacheCounters(**current)  # type: ignore[arg-type]

    def hit(self, tier: str) -> None:
        if tier == "memory":
            self.counters.memory_hits += 1
        else:
            self.counters.disk_hits += 1
        self.metrics.incr(f"{METRIC_PREFIX}.hit", tags={"tier": tier})

    def event(self, name: str, value: int = 1, tags: dict[str, str] | None = None) -> None:
        """Add `value` to the counter `name` and send `processor.symbolcache.<name>`."""
        if not value:
            return
        setattr(self.counters, name, getattr(self.counters, name) + value)
        self.metrics.incr(f"{METRIC_PREFIX}.{_metric_name(name)}", value, tags=tags)

    def download(self, supplier: str, transferred: int, seconds: float) -> None:
        self.counters.downloads += 1
        self.counters.download_bytes += transferred
        self.counters.download_seconds += seconds
        tags = {"supplier": supplier}
        self.metrics.incr(f"{METRIC_PREFIX}.download", tags=tags)
        self.metrics.incr(f"{METRIC_PREFIX}.download_bytes", transferred, tags=tags)
        self.metrics.timing(f"{METRIC_PREFIX}.download_time", seconds * 1000.0, tags=tags)

    def parsed(self, seconds: float) -> None:
        self.counters.parse_seconds += seconds
        self.metrics.timing(f"{METRIC_PREFIX}.parse_time", seconds * 1000.0)

    def size(self, size_bytes: int, entries: int) -> None:
        self.metrics.gauge(f"{METRIC_PREFIX}.size_bytes", size_bytes)
        self.metrics.gauge(f"{METRIC_PREFIX}.entries", entries)


def _flush_at_exit(sink_ref: weakref.ref[CounterSink], pid: int) -> None:
    sink = sink_ref()
    # A forked child inherits the parent's handlers and counts; only the owner flushes.
    if sink is not None and os.getpid() == pid:
        sink.flush(force=True)


_METRIC_NAMES = {
    "misses": "miss",
    "negative_hits": "negative_hit",
    "peer_fills": "peer_fill",
    "parse_errors": "parse_error",
    "evictions": "eviction",
    "supplier_errors": "supplier_error",
    "store_errors": "store_error",
    "lock_timeouts": "lock_timeout",
    "unsafe_names": "unsafe_name",
    "shared_hits": "shared_hit",
    "shared_uploads": "shared_upload",
    "shared_errors": "shared_error",
    "background_fills": "background_fill",
    "wait_timeouts": "wait_timeout",
}


def _metric_name(counter: str) -> str:
    return _METRIC_NAMES.get(counter, counter)
