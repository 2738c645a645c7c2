"""Dates and times (Socorro's DatesAndTimesRule): ISO strings and integer seconds."""

from __future__ import annotations

import datetime as dt

from procsupervisor import crashid
from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import MAX_INT, as_int, dig


def _parse_iso(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # Collectors write UTC; a naive value is taken as UTC, not as the worker's local time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class DatesAndTimesRule(Rule):
    def _submitted(self, ctx: CrashContext) -> dt.datetime:
        for candidate in (
            ctx.raw_crash.get("submitted_timestamp"),
            dig(ctx.raw_crash, "metadata", "submitted_timestamp"),
        ):
            parsed = _parse_iso(candidate)
            if parsed is not None:
                return parsed
        ctx.add_note("WARNING: raw_crash missing submitted_timestamp; using the crash id date")
        day = crashid.date_of(ctx.crash_id)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    def _seconds(self, ctx: CrashContext, annotation: str, default: int) -> int:
        value = ctx.raw_crash.get(annotation)
        if value is None:
            return default
        seconds = as_int(value)
        if seconds is None:
            ctx.add_note(f'non-integer value of "{annotation}"')
            return default
        return seconds

    def action(self, ctx: CrashContext) -> None:
        submitted = self._submitted(ctx)
        submitted_iso = submitted.isoformat()
        ctx.processed["submitted_timestamp"] = submitted_iso
        # date_processed is the collection time, so reprocessing keeps the same partitions.
        ctx.processed["date_processed"] = submitted_iso
        submitted_epoch = int(submitted.timestamp())

        if "CrashTime" not in ctx.raw_crash:
            ctx.add_note("WARNING: raw_crash missing CrashTime")
        crash_time = self._seconds(ctx, "CrashTime", submitted_epoch)
        if not 0 <= crash_time <= 253402300799:  # year 9999: the last date isoformat can print
            ctx.add_note('out-of-range value of "CrashTime"')
            crash_time = submitted_epoch
        ctx.processed["crash_time"] = crash_time
        if crash_time == submitted_epoch:
            ctx.add_note("client_crash_date is unknown")
        ctx.processed["client_crash_date"] = dt.datetime.fromtimestamp(
            crash_time, dt.UTC
        ).isoformat()

        startup_time = self._seconds(ctx, "StartupTime", crash_time)
        install_time = self._seconds(ctx, "InstallTime", startup_time)
        ctx.processed["install_age"] = crash_time - install_time
        ctx.processed["uptime"] = max(0, crash_time - startup_time)

        last_crash = None
        if "SecondsSinceLastCrash" in ctx.raw_crash:
            last_crash = as_int(ctx.raw_crash["SecondsSinceLastCrash"])
            if last_crash is None:
                ctx.add_note('non-integer value of "SecondsSinceLastCrash"')
            elif not 0 <= last_crash <= MAX_INT:
                last_crash = None
                ctx.add_note('"SecondsSinceLastCrash" out of range - set to NULL')
        ctx.processed["last_crash"] = last_crash
