"""The worker process: one crash at a time, told what to do over its pipe (DESIGN.md 2, 6, 7).

`worker_main` runs in the child right after the supervisor forks it. It first cuts itself loose
from everything it inherited (descriptors, signal handlers), arranges to die with the supervisor,
then opens its own clients and serves `process` requests until `stop` or EOF. `CrashHandler` is
the fetch / transform / save step itself; `procsupervisor process ID` uses it inline too.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from procsupervisor import __version__, crashid
from procsupervisor.backends import load_class, make_destinations, make_metrics, make_source
from procsupervisor.cache.provider import CachingSymbolProvider, provider_from_config
from procsupervisor.config import Config
from procsupervisor.logs import log_event, set_level
from procsupervisor.metrics import Metrics
from procsupervisor.protocol import BlockingChannel
from procsupervisor.storage.base import CrashDestination, CrashNotFound, CrashSource

log = logging.getLogger("procsupervisor.worker")

PR_SET_PDEATHSIG = 1
# Signals meant for the supervisor that a terminal may also send to the whole process group:
# a worker ignores them and finishes its crash; the supervisor decides what happens.
IGNORED_SIGNALS = (
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
REPROCESSING_RULESETS_NEED_PREVIOUS = frozenset({"regenerate_signature"})


@dataclass
class CrashResult:
    crash_id: str
    outcome: str  # ok | transient | not_found | invalid
    reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    processed: dict[str, Any] | None = None

    def message(self, cache_stats: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": "result",
            "crash_id": self.crash_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "timings_ms": self.timings_ms,
            "cache_stats": dict(cache_stats),
        }


class CrashHandler:
    """Fetch a crash from the source, run the processor, save to every destination."""

    def __init__(self, config: Config) -> None:
        self.metrics: Metrics = make_metrics(config)
        self.source: CrashSource = make_source(config, self.metrics)
        self.destinations: list[CrashDestination] = make_destinations(config, self.metrics)
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
            symbols=self.symbols, metrics=self.metrics, options=config.processor
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
            return CrashResult(str(crash_id)[:80], "invalid", "invalid crash id")

        on_stage("fetch")
        try:
            raw_crash, dumps, previous = self._fetch(crash_id, ruleset, queue, poison_reason)
        except CrashNotFound as exc:
            return CrashResult(crash_id, "not_found", f"not found: {exc}", _ms(timings, started))
        except (ValueError, TypeError) as exc:  # hostile/corrupt stored data: retrying won't help
            return CrashResult(crash_id, "invalid", f"unreadable crash: {exc}"[:300])
        except Exception as exc:
            reason = f"source failed: {type(exc).__name__}: {exc}"[:300]
            return CrashResult(crash_id, "transient", reason, _ms(timings, started))
        timings["fetch"] = _elapsed_ms(started)

        on_stage("process")
        step = time.perf_counter()
        self.symbols.start_crash()
        try:
            if poison_reason is not None:
                processed = self.processor.poison(crash_id, raw_crash, poison_reason)
            else:
                processed = self.processor.process(
                    crash_id, raw_crash, dumps, ruleset=ruleset or "default", previous=previous
                )
        except Exception as exc:  # the processor promises not to raise; if it does, retry
            log.exception("processor failed on %s", crash_id)
            reason = f"processor failed: {type(exc).__name__}: {exc}"[:300]
            return CrashResult(crash_id, "transient", reason, _ms(timings, started))
        timings["process"] = _elapsed_ms(step)
        self.metrics.timing(
            "processor.process_crash", timings["process"], tags={"ruleset": ruleset or "default"}
        )

        on_stage("save")
        step = time.perf_counter()
        failures = self._save(raw_crash, processed)
        timings["save"] = _elapsed_ms(step)
        timings["total"] = _elapsed_ms(started)
        if failures:
            reason = "destinations failed: " + "; ".join(failures)
            return CrashResult(crash_id, "transient", reason[:500], timings, processed)
        self.metrics.incr("processor.save_processed_crash")
        if previous is None and poison_reason is None:
            ingestion_ms = _ingestion_ms(raw_crash)
            if ingestion_ms is not None:
                self.metrics.timing("processor.ingestion_timing", ingestion_ms)
        return CrashResult(crash_id, "ok", "", timings, processed)

    def _fetch(
        self, crash_id: str, ruleset: str | None, queue: str, poison_reason: str | None
    ) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any] | None]:
        if poison_reason is not None:
            # The crash is being given up on: save what can be said about it even when its raw
            # crash is unreadable (that may be why it kept killing workers).
            try:
                return self.source.get_raw_crash(crash_id), {}, None
            except Exception:
                return {"uuid": crash_id}, {}, None
        raw_crash = self.source.get_raw_crash(crash_id)
        dumps = self.source.get_dumps(crash_id)
        previous = None
        if queue == "reprocessing" or ruleset in REPROCESSING_RULESETS_NEED_PREVIOUS:
            try:
                previous = self.source.get_processed(crash_id)
            except CrashNotFound:
                previous = None
        return raw_crash, dumps, previous

    def _save(self, raw_crash: Mapping[str, Any], processed: Mapping[str, Any]) -> list[str]:
        """Save to every destination in order; one failing never stops the others."""
        failures = []
        for destination in self.destinations:
            name = getattr(destination, "name", type(destination).__name__)
            step = time.perf_counter()
            try:
                destination.save_processed(raw_crash, processed)
            except Exception as exc:
                log_event(log, logging.WARNING, "destination failed", destination=name,
                          error=f"{type(exc).__name__}: {exc}"[:300])
                failures.append(f"{name}: {type(exc).__name__}")
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




def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


def _ms(timings: dict[str, float], started: float) -> dict[str, float]:
    timings["total"] = _elapsed_ms(started)
    return timings


# -- the worker process ------------------------------------------------------------------------


def worker_main(index: int, sock: socket.socket, config: Config, supervisor_pid: int) -> NoReturn:
    """Entry point in the forked child; never returns."""
    code = 1
    try:
        _detach_from_supervisor(sock.fileno(), supervisor_pid)
        _set_title(index, "starting")
        code = _serve(index, BlockingChannel(sock), config)
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        sys.stderr.flush()
        os._exit(code)


def _detach_from_supervisor(keep_fd: int, supervisor_pid: int) -> None:
    signal.set_wakeup_fd(-1)
    for signum in IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    # Nothing with a socket crosses a fork: close every inherited descriptor (broker connection,
    # control socket, other workers' pipes, the supervisor's lock) except stdio and our pipe.
    # The supervisor's objects stay referenced in this process until os._exit, so none of them
    # is ever finalized here and closes a descriptor number we reuse.
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd > 2 and fd != keep_fd:
            try:
                os.close(fd)
            except OSError:
                pass
    _die_with_parent(supervisor_pid)


def _die_with_parent(supervisor_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor_pid:
        os._exit(1)  # the supervisor died before PDEATHSIG was armed


def _set_title(index: int, state: str) -> None:
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(f"procsupervisor: worker {index} [{state}]")


def _serve(index: int, channel: BlockingChannel, config: Config) -> int:
    set_level(config.log_level)  # the config this worker was forked with, even mid-reload
    handler = CrashHandler(config)
    try:
        channel.send(
            {"type": "ready", "pid": os.getpid(), "version": __version__,
             "cache_stats": handler.cache_stats()}
        )
        _set_title(index, "idle")
        while True:
            message = channel.receive()
            if message is None or message["type"] == "stop":
                return 0
            crash_id = str(message.get("crash_id", ""))
            _set_title(index, crash_id[:36])
            result = handler.handle(
                crash_id,
                ruleset=message.get("ruleset") or None,
                queue=str(message.get("queue", "normal")),
                poison_reason=message.get("poison"),
                on_stage=lambda stage, cid=crash_id: channel.send(
                    {"type": "progress", "crash_id": cid, "stage": stage}
                ),
            )
            channel.send(result.message(handler.cache_stats()))
            _set_title(index, "idle")
    finally:
        handler.close()


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
