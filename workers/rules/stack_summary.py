"""Summaries of the walked stacks that crash-stats searches on (Socorro's TopMostFilesRule,
ModulesInStackRule, MissingSymbolsRule, ThreadCountRule, ReportTypeRule)."""

from __future__ import annotations

import re
from typing import Any

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig

BAD_FILENAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
BAD_HEX_CHARS = re.compile(r"[^a-fA-F0-9]")
NULL_DEBUG_ID = "0" * 33


def crashing_frames(processed: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Frames of the crashing thread, or None when there is no such stack."""
    index = processed.get("crashing_thread")
    if not isinstance(index, int) or isinstance(index, bool):
        return None
    frames = dig(processed, "json_dump", "threads", index, "frames")
    if not isinstance(frames, list):
        return None
    return [frame for frame in frames if isinstance(frame, dict)]


def _source_file(frame: Any) -> str | None:
    file = frame.get("file") if isinstance(frame, dict) else None
    return file if isinstance(file, str) and file else None


class TopMostFilesRule(Rule):
    """`topmost_filenames`: the first source file in the crashing stack, inlines first."""

    def action(self, ctx: CrashContext) -> None:
        for frame in crashing_frames(ctx.processed) or []:
            inlines = frame.get("inlines")
            for candidate in [*(inlines if isinstance(inlines, list) else []), frame]:
                file = _source_file(candidate)
                if file is not None:
                    ctx.processed["topmost_filenames"] = file
                    return


def _modules(processed: dict[str, Any]) -> list[dict[str, Any]]:
    modules = dig(processed, "json_dump", "modules")
    return [m for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []


class ModulesInStackRule(Rule):
    """`modules_in_stack`: sorted `module/debugid` of the modules in the crashing stack."""

    def action(self, ctx: CrashContext) -> None:
        frames = crashing_frames(ctx.processed)
        if not frames:
            return
        by_name = {
            module["filename"]: "{}/{}".format(
                BAD_FILENAME_CHARS.sub("", module["filename"]),
                BAD_HEX_CHARS.sub("", str(module.get("debug_id") or "")),
            )
            for module in _modules(ctx.processed)
            if isinstance(module.get("filename"), str)
        }
        in_stack = {by_name.get(frame.get("module")) for frame in frames}
        found = sorted(item for item in in_stack if item)
        if found:
            ctx.processed["modules_in_stack"] = ";".join(found)


class MissingSymbolsRule(Rule):
    """`missing_symbols`: `module/version/debugid[/codeid]` of modules without symbols, so
    someone can go and upload them."""

    @staticmethod
    def _format(module: dict[str, Any]) -> str:
        filename = BAD_FILENAME_CHARS.sub("", module["filename"])
        version = (module.get("version") or "None").replace("/", "\\/")
        debug_id = BAD_HEX_CHARS.sub("", str(module.get("debug_id") or NULL_DEBUG_ID))
        code_id = BAD_HEX_CHARS.sub("", str(module.get("code_id") or ""))
        parts = [filename, version, debug_id] + ([code_id] if code_id else [])
        return "/".join(parts)

    def action(self, ctx: CrashContext) -> None:
        missing = sorted(
            self._format(module)
            for module in _modules(ctx.processed)
            if isinstance(module.get("filename"), str) and module.get("missing_symbols") is True
        )
        if missing:
            ctx.processed["missing_symbols"] = ";".join(missing)


class ThreadCountRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        count = dig(ctx.processed, "json_dump", "thread_count")
        if not isinstance(count, int):
            threads = dig(ctx.processed, "json_dump", "threads")
            count = len(threads) if isinstance(threads, list) else None
        ctx.processed["thread_count"] = count


class ReportTypeRule(Rule):
    """`report_type`: `hang` for IPC errors, shutdown timeouts and watchdog stacks, else
    `crash`."""

    def action(self, ctx: CrashContext) -> None:
        report_type = "crash"
        if "ipc_channel_error" in ctx.processed or "async_shutdown_timeout" in ctx.processed:
            report_type = "hang"
        else:
            for frame in crashing_frames(ctx.processed) or []:
                function = frame.get("function")
                if isinstance(function, str) and "RunWatchdog" in function:
                    report_type = "hang"
                    break
        ctx.processed["report_type"] = report_type
