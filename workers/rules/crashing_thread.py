"""Crashing thread facts and stack truncation (Socorro's CrashingThreadInfoRule,
TruncateStacksRule)."""

from __future__ import annotations

from typing import Any

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig


class CrashingThreadInfoRule(Rule):
    """`crashing_thread`, `crashing_thread_name`, `reason`, `address`, `last_error_value`."""

    def predicate(self, ctx: CrashContext) -> bool:
        return isinstance(ctx.processed.get("json_dump"), dict)

    def action(self, ctx: CrashContext) -> None:
        json_dump = ctx.processed["json_dump"]
        crash_info = json_dump.get("crash_info")
        crash_info = crash_info if isinstance(crash_info, dict) else {}

        crashing_thread = crash_info.get("crashing_thread")
        if not isinstance(crashing_thread, int) or isinstance(crashing_thread, bool):
            crashing_thread = None
        ctx.processed["crashing_thread"] = crashing_thread
        if crashing_thread is None:
            ctx.add_note("mdsw did not identify the crashing thread")

        name = dig(json_dump, "crashing_thread", "thread_name")
        if name is None and crashing_thread is not None:
            name = dig(json_dump, "threads", crashing_thread, "thread_name")
        ctx.processed["crashing_thread_name"] = name if isinstance(name, str) else None

        reason = crash_info.get("type")
        ctx.processed["reason"] = reason if isinstance(reason, str) else ""

        address = crash_info.get("address", crash_info.get("crash_address"))
        adjusted = crash_info.get("adjusted_address")
        if isinstance(adjusted, dict):
            # rust-minidump's hint: a null-pointer access with an offset, or a non-canonical
            # address the CPU reported as 0.
            if adjusted.get("kind") == "null-pointer":
                address = "0x" + "0" * (
                    16 if isinstance(address, str) and len(address) == 18 else 8
                )
            elif adjusted.get("kind") == "non-canonical" and adjusted.get("address"):
                address = adjusted["address"]
        ctx.processed["address"] = address if isinstance(address, str) else None

        last_error = dig(json_dump, "crashing_thread", "last_error_value")
        if isinstance(last_error, str):
            ctx.processed["last_error_value"] = last_error


MAX_FRAMES = 500
HALF_MAX_FRAMES = MAX_FRAMES // 2


def truncate_frames(frames: list[Any]) -> list[Any]:
    """The first and last HALF_MAX_FRAMES frames around one marker frame; the ends of a stack
    say the most (where it crashed, how the thread started)."""
    dropped = len(frames) - 2 * HALF_MAX_FRAMES
    marker = {"truncated": {"msg": f"{dropped:,} frames truncated"}}
    return [*frames[:HALF_MAX_FRAMES], marker, *frames[-HALF_MAX_FRAMES:]]


class TruncateStacksRule(Rule):
    """Stacks longer than MAX_FRAMES are cut in the middle (stack overflows give thousands)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def _truncate_stack(self, ctx: CrashContext, thread: Any, path: str) -> None:
        if not isinstance(thread, dict):
            return
        frames = thread.get("frames")
        if not isinstance(frames, list) or len(frames) <= MAX_FRAMES:
            return
        self.metrics.gauge("processor.truncatestackrule.stack_size", len(frames))
        self.metrics.incr("processor.truncatestackrule.truncated")
        thread["frames"] = truncate_frames(frames)
        thread["truncated"] = True
        ctx.add_note(
            f"TruncateStacksRule: truncated {path}.frames: {len(frames)} -> {len(thread['frames'])}"
        )

    def _truncate_dump(self, ctx: CrashContext, json_dump: Any, path: str) -> None:
        if not isinstance(json_dump, dict):
            return
        self._truncate_stack(ctx, json_dump.get("crashing_thread"), f"{path}.crashing_thread")
        threads = json_dump.get("threads")
        for index, thread in enumerate(threads if isinstance(threads, list) else []):
            self._truncate_stack(ctx, thread, f"{path}.threads[{index}]")

    def action(self, ctx: CrashContext) -> None:
        self._truncate_dump(ctx, ctx.processed.get("json_dump"), "json_dump")
        for name in ctx.processed.get("additional_minidumps") or []:
            extra = ctx.processed.get(name)
            if isinstance(extra, dict):
                self._truncate_dump(ctx, extra.get("json_dump"), f"{name}.json_dump")
