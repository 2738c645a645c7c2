"""Walks every minidump of a crash (Socorro's MinidumpStackwalkRule, docs/processing.md §7.4-7.5),
in-process with our pure-Python stackwalker instead of a subprocess."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from procsupervisor import __version__
from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.stackwalker.model import SymbolProvider
from procsupervisor.workers.stackwalker.output.crash_annotations import apply_crash_annotations

logger = logging.getLogger(__name__)

MAIN_DUMP = "upload_file_minidump"
STACKWALK_VERSION = f"procsupervisor-stackwalk {__version__}"
# Walker notes are kept in the processed crash, but a hostile dump must not flood them.
MAX_WALKER_NOTES = 20
# mdsw_return_code as minidump-stackwalk exits: 0 with output, 1 when the dump did not process.
FAILED = 1
# mdsw_stderr keeps the stackwalker's last log lines, as Socorro keeps minidump-stackwalk's.
STDERR_LINES = 10


def stderr_tail(lines: list[str]) -> str:
    if len(lines) > STDERR_LINES:
        lines = ["...", *lines[-STDERR_LINES:]]
    return "\n".join(lines)

# walk_minidump(data, symbols, *, max_frames_per_thread, deadline_s) -> ProcessResult
Walker = Callable[..., Any]


def default_walker() -> Walker:
    # Imported on first use: the stackwalker is heavy and the metadata rules do not need it.
    from procsupervisor.workers.stackwalker.api import walk_minidump

    return walk_minidump


class MinidumpStackwalkRule(Rule):
    """The main dump goes to `json_dump`; every other `upload_file_minidump*` dump to a key of
    its own name, listed in `additional_minidumps`. Beside the main one: `mdsw_status_string`,
    `mdsw_return_code` and `mdsw_stderr` (the stackwalker's notes), as Socorro records them for
    its minidump-stackwalk subprocess."""

    def __init__(
        self,
        symbols: SymbolProvider | None,
        metrics: Metrics,
        *,
        max_frames_per_thread: int = 1024,
        timeout_s: float | None = 120.0,
        walker: Walker | None = None,
        bounds: Mapping[str, int] | None = None,
    ) -> None:
        self.symbols = symbols
        self.metrics = metrics
        self.max_frames_per_thread = max_frames_per_thread
        self.timeout_s = timeout_s
        self._walker = walker
        # The dump's own bounds (total frames, json_dump bytes, process memory), passed on
        # as walker keywords (stackwalker/limits.py); the walker's defaults where absent.
        self.bounds = dict(bounds or {})

    def predicate(self, ctx: CrashContext) -> bool:
        return any(name.startswith(MAIN_DUMP) for name in ctx.dumps)

    def _walk(self, ctx: CrashContext, name: str, data: bytes) -> dict[str, Any]:
        if not data:
            ctx.add_note(f"MinidumpStackwalkRule: {name} is empty--skipping minidump processing")
            self.metrics.incr("processor.minidumpstackwalk.run", tags={"outcome": "empty"})
            return {
                "mdsw_status_string": "EmptyMinidump",
                "mdsw_stderr": "Shortcut for 0-bytes minidump.",
                "json_dump": {},
            }
        if self._walker is None:
            self._walker = default_walker()
        try:
            result = self._walker(
                data,
                self.symbols,
                max_frames_per_thread=self.max_frames_per_thread,
                # seconds from the start of this walk, not a clock value
                deadline_s=self.timeout_s,
                **self.bounds,
            )
            json_dump = result.to_json_dump()
            status = str(result.status)
            walker_notes = [str(note) for note in getattr(result, "notes", [])]
        except Exception as exc:
            logger.exception("stackwalk failed crash_id=%s dump=%s", ctx.crash_id, name)
            ctx.add_note(f"MinidumpStackwalkRule: stackwalking {name} failed: {type(exc).__name__}")
            self.metrics.incr("processor.minidumpstackwalk.run", tags={"outcome": "error"})
            return {
                "mdsw_status_string": "unknown error",
                "mdsw_return_code": FAILED,
                "mdsw_stderr": f"stackwalker failed: {type(exc).__name__}",
                "json_dump": {},
            }

        if status != "OK":
            ctx.add_note(f"MinidumpStackwalkRule: {name}: stackwalk status {status}")
        for note in walker_notes[:MAX_WALKER_NOTES]:
            ctx.add_note(f"MinidumpStackwalkRule: {name}: {note}")
        if len(walker_notes) > MAX_WALKER_NOTES:
            ctx.add_note(
                f"MinidumpStackwalkRule: {name}: {len(walker_notes) - MAX_WALKER_NOTES} "
                "more stackwalker notes dropped"
            )
        self.metrics.incr(
            "processor.minidumpstackwalk.run",
            tags={"outcome": "success" if status == "OK" else "fail"},
        )
        json_dump = json_dump if isinstance(json_dump, dict) else {}
        apply_crash_annotations(json_dump, ctx.raw_crash)
        return {
            "mdsw_status_string": status,
            "mdsw_return_code": 0 if status == "OK" else FAILED,
            "mdsw_stderr": stderr_tail(walker_notes),
            "json_dump": json_dump,
        }

    def action(self, ctx: CrashContext) -> None:
        additional: list[str] = []
        ctx.processed["stackwalk_version"] = STACKWALK_VERSION
        for name in sorted(ctx.dumps):
            if not name.startswith(MAIN_DUMP):
                continue
            walked = self._walk(ctx, name, ctx.dumps[name])
            if name == MAIN_DUMP:
                ctx.processed.update(walked)
            else:
                # The stackwalker's exit code and log stay with the main dump: an additional
                # dump's entry is its json_dump, status and success.
                ctx.processed[name] = {
                    "json_dump": walked["json_dump"],
                    "mdsw_status_string": walked["mdsw_status_string"],
                    "success": walked["mdsw_status_string"] == "OK",
                }
                additional.append(name)
        ctx.processed["additional_minidumps"] = additional
