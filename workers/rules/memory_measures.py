"""Key measurements of an out-of-memory crash's memory report (Socorro's
MemoryReportExtraction): totals for the crashed process, by its pid, in `memory_measures`."""

from __future__ import annotations

import logging
from typing import Any

from procsupervisor.workers.rules.base import CrashContext, Rule

logger = logging.getLogger(__name__)

# nsIMemoryReporter kinds and units.
KIND_NONHEAP = 0
KIND_HEAP = 1
UNITS_BYTES = 0
# Reports copied by path as they are.
MEASURED = (
    "gfx-textures",
    "ghost-windows",
    "heap-allocated",
    "host-object-urls",
    "private",
    "resident",
    "resident-unique",
    "system-heap-allocated",
    "vsize",
    "vsize-max-contiguous",
)
# Totals derived from groups of reports.
DERIVED = (
    "explicit",
    "heap-overhead",
    "heap-unclassified",
    "images",
    "js-main-runtime",
    "top-none-detached",
)


class UnusableReport(ValueError):
    """The memory report cannot give measurements (a malformed or foreign report)."""


def _number(report: dict[str, Any], key: str) -> int:
    value = report.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnusableReport(f"report {key} is not an integer")
    return value


def memory_measures(memory_report: dict[str, Any], pid: int) -> dict[str, int]:
    """Measurements (dashes turned to underscores) of the process `pid`."""
    totals = dict.fromkeys((*MEASURED, *DERIVED), 0)
    explicit_heap = explicit_nonheap = 0
    pid_tag = f"(pid {pid})"
    found = False
    reports = memory_report["reports"]
    if not isinstance(reports, list):
        raise UnusableReport("reports is not a list")
    for report in reports:
        if not isinstance(report, dict):
            raise UnusableReport("a report is not an object")
        process, path = report.get("process"), report.get("path")
        if not isinstance(process, str) or not isinstance(path, str):
            raise UnusableReport("a report has no process or path")
        if pid_tag not in process:
            continue
        found = True
        kind, units, amount = (_number(report, k) for k in ("kind", "units", "amount"))
        if path.startswith("explicit/"):
            if units != UNITS_BYTES:
                raise UnusableReport(f"bad units for an explicit/ report: {units}")
            if kind == KIND_NONHEAP:
                explicit_nonheap += amount
            elif kind == KIND_HEAP:
                explicit_heap += amount
            else:
                raise UnusableReport(f"bad kind for an explicit/ report: {kind}")
            if path.startswith("explicit/images/"):
                totals["images"] += amount
            elif "top(none)/detached" in path:
                totals["top-none-detached"] += amount
            elif path.startswith("explicit/heap-overhead/"):
                totals["heap-overhead"] += amount
        elif path.startswith("js-main-runtime/"):
            totals["js-main-runtime"] += amount
        elif path in MEASURED:
            totals[path] += amount
    if not found:
        raise UnusableReport(f"no measurements for pid {pid}")
    # Negative when the allocator's figures are off; shown as they are.
    totals["heap-unclassified"] = totals["heap-allocated"] - explicit_heap
    totals["explicit"] = totals["heap-allocated"] + explicit_nonheap
    return {key.replace("-", "_"): value for key, value in totals.items()}


class MemoryReportExtraction(Rule):
    """After OutOfMemoryBinaryRule; needs the crashed process's pid from the minidump."""

    def predicate(self, ctx: CrashContext) -> bool:
        json_dump = ctx.processed.get("json_dump")
        report = ctx.processed.get("memory_report")
        return (
            isinstance(json_dump, dict)
            and isinstance(json_dump.get("pid"), int)
            and isinstance(report, dict)
            and all(key in report for key in ("version", "reports", "hasMozMallocUsableSize"))
        )

    def action(self, ctx: CrashContext) -> None:
        try:
            measures = memory_measures(
                ctx.processed["memory_report"], ctx.processed["json_dump"]["pid"]
            )
        except UnusableReport as exc:
            logger.info("memory report of %s gives no measurements: %s", ctx.crash_id, exc)
            return
        ctx.processed["memory_measures"] = measures
