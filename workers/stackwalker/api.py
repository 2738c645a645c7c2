"""The stackwalker's entry point: a minidump's bytes in, a ProcessResult out. Never raises.

Used by the stackwalk rule (workers/rules), the `stackwalk` command and scripts/conformance.py.
Symbols come from any `SymbolProvider`: `symbols.DirectorySymbolProvider` for local roots, or the
shared symbol cache (procsupervisor.cache), which builds on this package, never the reverse.
"""

from __future__ import annotations

import logging
import mmap
import time
from dataclasses import dataclass, field
from typing import Any

from procsupervisor.workers.stackwalker.limits import (
    DEFAULT_MAX_JSON_BYTES,
    DEFAULT_MAX_TOTAL_FRAMES,
)
from procsupervisor.workers.stackwalker.model import SymbolProvider
from procsupervisor.workers.stackwalker.process import ProcessState, process_minidump
from procsupervisor.workers.stackwalker.unwind.walk import MAX_FRAMES

log = logging.getLogger(__name__)

STATUS_INTERNAL_ERROR = "ERROR_INTERNAL"


@dataclass
class ProcessResult:
    status: str
    notes: list[str] = field(default_factory=list)
    state: ProcessState | None = None
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES  # bound on to_json_dump's frames (limits.py)

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def to_json_dump(self) -> dict[str, Any]:
        if self.state is None:
            return {"status": self.status, "notes": list(self.notes)}
        from procsupervisor.workers.stackwalker.output import json_dump

        return json_dump.render(self.state, max_bytes=self.max_json_bytes)

    def to_machine_readable(self) -> str:
        """Breakpad's `-m` text; empty for a dump Breakpad rejects (it prints nothing)."""
        if self.state is None or not self.ok:
            return ""
        from procsupervisor.workers.stackwalker.output import machine_readable

        return machine_readable.render(self.state)


def walk_minidump(
    data: bytes | bytearray | mmap.mmap,
    symbols: SymbolProvider | None,
    *,
    max_frames_per_thread: int = MAX_FRAMES,
    deadline_s: float | None = None,
    max_total_frames: int = DEFAULT_MAX_TOTAL_FRAMES,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_rss_bytes: int | None = None,
) -> ProcessResult:
    """Process one minidump. `max_frames_per_thread` defaults to Breakpad's limit (2^20);
    `deadline_s` bounds the walking time (threads walked after it expires keep only what was
    found so far and are marked truncated); the frames of all threads together, the
    json_dump's size and the process's resident memory are bounded too (limits.py).

    An mmap must stay open while the result is used: streams are read from it lazily. The
    result's views pin the map, so drop the result before closing it (else BufferError)."""
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    try:
        state = process_minidump(
            data,
            symbols,
            max_frames_per_thread=max_frames_per_thread,
            deadline=deadline,
            max_total_frames=max_total_frames,
            max_rss_bytes=max_rss_bytes,
        )
    except Exception as exc:  # the contract: a status, never an exception
        log.exception("stackwalker failed")
        note = f"stackwalker failed: {type(exc).__name__}: {exc}"
        return ProcessResult(STATUS_INTERNAL_ERROR, [note])
    return ProcessResult(state.status, state.notes, state, max_json_bytes)

