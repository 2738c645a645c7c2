"""Out-of-memory memory report (Socorro's OutOfMemoryBinaryRule): a gzipped JSON dump."""

from __future__ import annotations

import json
import zlib

from procsupervisor.workers.rules.base import CrashContext, Rule

DUMP_NAME = "memory_report"
# A decompression bomb must not take the worker down: stop reading past this.
MAX_UNCOMPRESSED = 20 * 1024 * 1024


class OutOfMemoryBinaryRule(Rule):
    def predicate(self, ctx: CrashContext) -> bool:
        return DUMP_NAME in ctx.dumps

    def _error(self, ctx: CrashContext, message: str) -> None:
        ctx.processed["memory_report_error"] = message
        ctx.add_note(f"OutOfMemoryBinaryRule: {message}")

    def action(self, ctx: CrashContext) -> None:
        data = ctx.dumps[DUMP_NAME]
        # wbits 16+MAX_WBITS: gzip framing only.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = inflater.decompress(data, MAX_UNCOMPRESSED + 1)
        except zlib.error:
            self._error(ctx, "memory_report is not valid gzip")
            return
        if len(text) > MAX_UNCOMPRESSED or inflater.unconsumed_tail:
            self._error(ctx, f"memory_report larger than {MAX_UNCOMPRESSED} bytes uncompressed")
            return
        if not inflater.eof:
            self._error(ctx, "memory_report is truncated gzip")
            return
        try:
            report = json.loads(text)
        except (ValueError, RecursionError):
            self._error(ctx, "memory_report is not valid JSON")
            return
        if not isinstance(report, dict):
            self._error(ctx, "memory_report is not a JSON object")
            return
        ctx.processed["memory_report"] = report
