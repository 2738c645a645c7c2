"""The fetch / transform / save step for one crash (docs/architecture.md §7).

`CrashHandler` opens the worker's clients (source, destinations, symbol cache, processor) and
turns one crash id into an `Outcome`. The worker process (`worker_process`) calls it for each
`process` request; `procsupervisor process ID` uses it inline too. What to read for a crash
(dumps, the previous processed crash) is asked of the ruleset's declaration
(`rules/rulesets.py`), never decided here from queue or ruleset names.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from procsupervisor import crashid
from procsupervisor.backends import load_class, make_destinations, make_metrics, make_source
from procsupervisor.cache.provider import CachingSymbolProvider, provider_from_config
from procsupervisor.config import Config
from procsupervisor.health import backend_name, describe_cause
from procsupervisor.logs import log_event
from procsupervisor.metrics import Metrics
from procsupervisor.protocol import Outcome, Result
from procsupervisor.storage.base import (
    BackendUnavailable,
    CrashDestination,
    CrashNotFound,
    CrashSource,
)
from procsupervisor.workers.rules.rulesets import DEFAULT, POISON, RULESETS, Ruleset, ruleset_for

log = logging.getLogger("procsupervisor.worker")


@dataclass
class CrashResult:
    crash_id: str
    outcome: Outcome
    reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    processed: dict[str, Any] | None = None
    backend: str | None = None  # with `unavailable`: which backend failed

    def message(self, cache_stats: Mapping[str, Any]) -> Result:
        return Result(
            crash_id=self.crash_id,
            outcome=self.outcome,
            reason=self.reason,
            timings_ms=self.timings_ms,
            cache_stats=dict(cache_stats),
            backend=self.backend,
        )


class CrashHandler:
    """Fetch a crash from the source, run the processor, save to every destination."""

    def __init__(self, config: Config) -> None:
        self.metrics: Metrics = make_metrics(config)
        self.source: CrashSource = make_source(config, self.metrics)
        self.source_name = backend_name("source", config.source_backend)
        self.destinations: list[CrashDestination] = make_destinations(config, self.metrics)
        # Named as in the config, which is how the supervisor probes them.
        self.destination_names = {
            id(destination): backend_name("destination", name)
            for destination, name in zip(self.destinations, config.destination_order, strict=True)
        }
        # Symbol misses are indexed by background processes that each crash waits for at most
        # [symbols] index_wait_s; their memory is held to the workers' limit by default.
        self.symbols: CachingSymbolProvider = provider_from_config(
            config.symbols,
            config.data_dir,
            self.metrics,
            default_index_memory_mb=config.supervisor.worker_max_rss_mb,
            background=True,
        )
        factory = load_class(config.supervisor.processor)
        self.processor = factory(
            symbols=self.symbols, metrics=self.metrics, options=processor_options(config)
        )

    def cache_stats(self) -> dict[str, Any]:
        try:
            return dict(self.symbols.stats())
        except Exception:
            log.exception("symbol cache stats failed")
            return {}

    def handle(
        self,
        crash_id: str,
        *,
        ruleset: str | None = None,
        queue: str = "normal",
        poison_reason: str | None = None,
        on_stage: Callable[[str], None] = lambda stage: None,
    ) -> CrashResult:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if not crashid.is_valid(crash_id):
            return CrashResult(str(crash_id)[:80], Outcome.INVALID, "invalid crash id")
        declared = RULESETS[POISON] if poison_reason is not None else ruleset_for(ruleset)

        on_stage("fetch")
        try:
            raw_crash, dumps, previous = self._fetch(crash_id, declared, queue)
        except CrashNotFound as exc:
            reason = f"not found: {exc}"
            return CrashResult(crash_id, Outcome.NOT_FOUND, reason, _ms(timings, started))
        except BackendUnavailable as exc:  # the source fails every crash now, not this one
            reason = f"source failed: {describe_cause(exc)}"
            return CrashResult(crash_id, Outcome.UNAVAILABLE, reason, _ms(timings, started),
                               backend=self.source_name)
        except (ValueError, TypeError) as exc:  # hostile/corrupt stored data: retrying won't help
            return CrashResult(crash_id, Outcome.INVALID, f"unreadable crash: {exc}"[:300])
        except Exception as exc:
            reason = f"source failed: {describe_cause(exc)}"
            return CrashResult(crash_id, Outcome.TRANSIENT, reason, _ms(timings, started))
        timings["fetch"] = _elapsed_ms(started)
        unknown = self._unknown_ruleset(ruleset) if poison_reason is None else None
        if unknown is not None:
            # A bad request, not a bad crash: nothing is processed or saved, so a good
            # processed crash is never replaced by a failed one; the supervisor dead-letters it.
            return CrashResult(crash_id, Outcome.INVALID, unknown, _ms(timings, started))

        on_stage("process")
        step = time.perf_counter()
        self.symbols.start_crash()
        try:
            if poison_reason is not None:
                processed = self.processor.poison(crash_id, raw_crash, poison_reason)
            else:
                processed = self.processor.process(
                    crash_id, raw_crash, dumps, ruleset=ruleset or DEFAULT, previous=previous
                )
        except Exception as exc:  # the processor promises not to raise; if it does, retry
            log.exception("processor failed on %s", crash_id)
            reason = f"processor failed: {type(exc).__name__}: {exc}"[:300]
            return CrashResult(crash_id, Outcome.TRANSIENT, reason, _ms(timings, started))
        timings["process"] = _elapsed_ms(step)
        self.metrics.timing(
            "processor.process_crash", timings["process"], tags={"ruleset": ruleset or DEFAULT}
        )

        on_stage("save")
        step = time.perf_counter()
        failures = self._save(raw_crash, processed)
        timings["save"] = _elapsed_ms(step)
        timings["total"] = _elapsed_ms(started)
        if failures:
            # The root cause of each, so a dead letter says why without the worker's log.
            reason = "destinations failed: " + "; ".join(
                f"{getattr(destination, 'name', type(destination).__name__)}: "
                f"{describe_cause(exc)}"
                for destination, exc in failures
            )
            down = [d for d, exc in failures if isinstance(exc, BackendUnavailable)]
            if down:  # an outage, not this crash: it must not cost an attempt
                return CrashResult(crash_id, Outcome.UNAVAILABLE, reason[:500], timings,
                                   processed, backend=self._destination_name(down[0]))
            return CrashResult(crash_id, Outcome.TRANSIENT, reason[:500], timings, processed)
        self.metrics.incr("processor.save_processed_crash")
        if previous is None and poison_reason is None:
            ingestion_ms = _ingestion_ms(raw_crash)
            if ingestion_ms is not None:
                self.metrics.timing("processor.ingestion_timing", ingestion_ms)
        return CrashResult(crash_id, Outcome.OK, "", timings, processed)

    def _unknown_ruleset(self, ruleset: str | None) -> str | None:
        """Why `ruleset` cannot run here, or None when it can (or the processor cannot say)."""
        known = getattr(self.processor, "rulesets", None)
        if ruleset is None or known is None or ruleset in known:
            return None
        return f"unknown ruleset {ruleset[:40]!r} (known: {', '.join(known)})"

    def _fetch(
        self, crash_id: str, ruleset: Ruleset, queue: str
    ) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any] | None]:
        """The raw crash, its dumps and the previous processed crash, as far as `ruleset`
        reads them."""
        if ruleset.raw_crash_required:
            raw_crash = self.source.get_raw_crash(crash_id)
        else:
            # Saved even when the raw crash is unreadable (for a poison crash that may be why
            # it kept killing workers): what can be said about it is still worth a record.
            try:
                raw_crash = self.source.get_raw_crash(crash_id)
            except Exception:
                raw_crash = {"uuid": crash_id}
        dumps = self.source.get_dumps(crash_id) if ruleset.reads_dumps else {}
        previous = None
        if ruleset.reads_previous_processed(queue):
            try:
                previous = self.source.get_processed(crash_id)
            except CrashNotFound:
                previous = None
        return raw_crash, dumps, previous

    def _destination_name(self, destination: CrashDestination) -> str:
        name = getattr(destination, "name", type(destination).__name__)
        return self.destination_names.get(id(destination), backend_name("destination", name))

    def _save(
        self, raw_crash: Mapping[str, Any], processed: Mapping[str, Any]
    ) -> list[tuple[CrashDestination, Exception]]:
        """Save to every destination in order; one failing never stops the others."""
        failures = []
        for destination in self.destinations:
            name = getattr(destination, "name", type(destination).__name__)
            step = time.perf_counter()
            try:
                destination.save_processed(raw_crash, processed)
            except Exception as exc:
                log_event(log, logging.WARNING, "destination failed", destination=name,
                          error=f"{type(exc).__name__}: {exc}"[:300],
                          cause=describe_cause(exc))
                failures.append((destination, exc))
            else:
                self.metrics.timing(f"processor.{name}.save_processed_crash", _elapsed_ms(step))
        return failures

    def close(self) -> None:
        # The symbol cache first: closing flushes its counters into the shared totals and
        # through metrics, which must still be open then.
        for client in (self.symbols, self.source, *self.destinations, self.metrics):
            try:
                client.close()
            except Exception:
                log.exception("closing %s failed", type(client).__name__)


def processor_options(config: Config) -> dict[str, str]:
    """[processor] as given, plus the worker's memory cap as the stackwalk's memory bound
    (unless set there): a dump that would take the worker past `worker_max_rss_mb` stops
    being walked there (stackwalker/limits.py) instead of taking the host into swap."""
    options = dict(config.processor)
    max_rss_mb = config.supervisor.worker_max_rss_mb
    if max_rss_mb is not None and not options.get("stackwalk_max_rss_mb"):
        options["stackwalk_max_rss_mb"] = str(max_rss_mb)
    return options


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


def _ms(timings: dict[str, float], started: float) -> dict[str, float]:
    timings["total"] = _elapsed_ms(started)
    return timings


def _ingestion_ms(raw_crash: Mapping[str, Any]) -> float | None:
    """Milliseconds from collection (`submitted_timestamp`) to saved, as Socorro's
    processor.ingestion_timing; None when the raw crash carries no usable timestamp."""
    submitted = raw_crash.get("submitted_timestamp")
    if not isinstance(submitted, str):
        return None
    try:
        when = dt.datetime.fromisoformat(submitted)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (dt.datetime.now(dt.UTC) - when).total_seconds() * 1000)
