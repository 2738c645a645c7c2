"""`procsupervisor verify`: the safety net behind the delivery guarantees (docs/operations.md).

Socorro runs a periodic job (verifyprocessed) that walks the raw crashes of a day, by the
date in their storage key, and reports those that have no processed crash. Here one command
does it for a range of days, also counting a crash as accounted for when a queue still holds
it (waiting, in flight or dead-lettered with its reason), and can queue the missing ones.
An operator puts it in a timer; it exits non-zero when something is missing.

A broker cannot list its messages without taking them, so with the `rabbitmq` queue only the
stores are checked: a crash still waiting in the broker shows as missing, and queueing it again
at most processes it twice, which is harmless (docs/architecture.md §5). Run it over days the
service has finished with (`--until` yesterday) to avoid that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from procsupervisor.backends import make_destinations, make_queue, make_source
from procsupervisor.config import Config
from procsupervisor.metrics import NullMetrics
from procsupervisor.storage.base import CrashSource


@dataclass
class VerifyReport:
    since: dt.date
    until: dt.date
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    queued: int = 0
    queue_visible: bool = True  # False: the queue could not be listed (a broker)

    def summary(self) -> str:
        line = (f"checked {self.checked}, missing {len(self.missing)}, queued {self.queued}"
                f" ({self.since} to {self.until})")
        if not self.queue_visible:
            line += "; the queue cannot be listed, so crashes waiting in it count as missing"
        return line


def days(since: dt.date, until: dt.date) -> Iterator[dt.date]:
    day = since
    while day <= until:
        yield day
        day += dt.timedelta(days=1)


def verify(
    config: Config,
    since: dt.date,
    until: dt.date,
    *,
    requeue: bool = False,
    queue_name: str = "normal",
    on_missing: Callable[[str], None] = lambda crash_id: None,
) -> VerifyReport:
    """Check every raw crash stored for the days `since`..`until` (UTC dates, inclusive):
    each must have a processed crash or be held by the queue; with `requeue`, queue the
    missing ones on `queue_name`. Raises ValueError for a setup it cannot check, OSError or
    a storage error when a backend fails."""
    if until < since:
        raise ValueError(f"--until {until} is before --since {since}")
    metrics = NullMetrics()
    source = make_source(config, metrics)
    destinations = make_destinations(config, metrics)
    queue = make_queue(config, metrics)
    report = VerifyReport(since, until)
    try:
        if queue_name not in queue.queue_names:
            known = ", ".join(queue.queue_names)
            raise ValueError(f"unknown queue {queue_name!r} (known: {known})")
        processed_store = _processed_store(destinations)
        held = queue.queued_crash_ids()
        report.queue_visible = held is not None
        for day in days(since, until):
            for crash_id in source.raw_crash_ids(day):
                report.checked += 1
                if processed_store.has_processed(crash_id) or (held and crash_id in held):
                    continue
                report.missing.append(crash_id)
                on_missing(crash_id)
                if requeue:
                    queue.publish(queue_name, crash_id)
                    report.queued += 1
    finally:
        for client in (source, *destinations, queue):
            client.close()
    return report


def _processed_store(destinations: list) -> CrashSource:
    """The first destination processed crashes can be read back from (fs, s3)."""
    for destination in destinations:
        if isinstance(destination, CrashSource):
            return destination
    names = ", ".join(getattr(d, "name", type(d).__name__) for d in destinations)
    raise ValueError(
        f"no destination keeps processed crashes where they can be read back ({names});"
        " verify needs an fs or s3 destination"
    )
