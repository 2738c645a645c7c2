"""Bounds on the work one dump can cause (docs/architecture.md §8).

A small hostile dump can describe thousands of threads that all point at one stack full of
return addresses: 4,096 threads over one 64 KiB stack walked to 4.2 million frames, a 1 GB
json_dump and 9 GB of memory, all within the time limit. Besides the per-thread frame limit:

- a thread whose stack (its declared start and the end of its memory) was already walked for
  another thread keeps only its context frame (`SHARED_STACK`);
- the frames of all threads together are capped (`TOTAL_FRAME_LIMIT`, default
  `DEFAULT_MAX_TOTAL_FRAMES`); later threads keep only their context frame;
- the walk stops when the process's private resident memory passes `max_rss_bytes` (the
  worker's memory cap), checked before each thread and every `RSS_CHECK_EVERY` frames
  (`MEMORY_LIMIT`);
- the json_dump rendering stops adding frames past `DEFAULT_MAX_JSON_BYTES` (output/json_dump).

A thread cut short by any of them is marked truncated with that reason, and one note per cause
says how many threads it touched. Real dumps stay far below (the test data's largest walks 309
frames, 208 KB of json_dump), so their output is unchanged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

DEFAULT_MAX_TOTAL_FRAMES = 50_000
DEFAULT_MAX_JSON_BYTES = 32 * 1024 * 1024
RSS_CHECK_EVERY = 64  # frames between two reads of /proc/self/statm

SHARED_STACK = "shared stack"
TOTAL_FRAME_LIMIT = "total frame limit"
MEMORY_LIMIT = "memory limit"
JSON_SIZE_LIMIT = "json size limit"

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def private_resident_bytes() -> int | None:
    """This process's resident memory less its file-backed pages (the mapped symbol indexes,
    which the page cache shares and can drop), or None where /proc is not available: what a
    walk's frames grow."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            fields = handle.read().split()
        return (int(fields[1]) - int(fields[2])) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class WalkBudget:
    """What is left for the rest of one dump's walk."""

    frames_left: int = DEFAULT_MAX_TOTAL_FRAMES
    max_rss_bytes: int | None = None
    deadline: float | None = None  # time.monotonic() value
    reserved: int = 0  # frames kept back for the requesting thread until it is walked
    _calls: int = 0
    cut: dict[str, int] = field(default_factory=dict)  # reason -> threads cut short

    def stop_reason(self) -> str | None:
        """Checked after every frame of every thread: why to stop now, or None."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "time limit"
        self._calls += 1
        if self.max_rss_bytes is not None and self._calls % RSS_CHECK_EVERY == 0:
            rss = private_resident_bytes()
            if rss is not None and rss > self.max_rss_bytes:
                return MEMORY_LIMIT
        return None

    def memory_exceeded(self) -> bool:
        if self.max_rss_bytes is None:
            return False
        rss = private_resident_bytes()
        return rss is not None and rss > self.max_rss_bytes

    def count_cut(self, reason: str | None) -> None:
        if reason in (SHARED_STACK, TOTAL_FRAME_LIMIT, MEMORY_LIMIT):
            self.cut[reason] = self.cut.get(reason, 0) + 1

    def notes(self, max_total_frames: int) -> list[str]:
        wording = {
            SHARED_STACK: "walk the same stack memory as an earlier thread",
            TOTAL_FRAME_LIMIT: f"came after the dump's {max_total_frames} frames were walked",
            MEMORY_LIMIT: "came after the process memory limit was reached",
        }
        return [
            f"{count} thread(s) {wording[reason]}: only their context frame is kept"
            for reason, count in self.cut.items()
        ]
