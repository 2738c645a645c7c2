"""Raw-crash hygiene (docs/processing.md §7.5): DeNull, DeNone, crash report keys, metadata,
ModuleSignatureInfo as text."""

from __future__ import annotations

import json
import re
from typing import Any

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules.base import CrashContext, Rule


def _de_null(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\0", "")
    if isinstance(value, bytes):
        return value.replace(b"\0", b"")
    return value


class DeNullRule(Rule):
    """Strips NUL characters from raw keys and string values: they break storage downstream."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def action(self, ctx: CrashContext) -> None:
        had_nulls = False
        for key, value in list(ctx.raw_crash.items()):
            clean_key, clean_value = _de_null(key), _de_null(value)
            if clean_key != key or clean_value != value:
                had_nulls = True
                del ctx.raw_crash[key]
                ctx.raw_crash[clean_key] = clean_value
        if had_nulls:
            self.metrics.incr("processor.denullrule.has_nulls")


class DeNoneRule(Rule):
    """Drops raw keys whose value is None (a crash reporter bug, never information)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def action(self, ctx: CrashContext) -> None:
        nones = [key for key, value in ctx.raw_crash.items() if value is None]
        for key in nones:
            del ctx.raw_crash[key]
        if nones:
            self.metrics.incr("processor.denonerule.had_nones")


class CrashReportKeysRule(Rule):
    """`crash_report_keys`: the sorted annotation and dump names, so one can search by key."""

    VALID_KEY = re.compile(r"^[a-zA-Z0-9_-]{1,100}$")

    def action(self, ctx: CrashContext) -> None:
        all_keys = set(ctx.raw_crash) | set(ctx.dumps)
        valid = sorted(
            key for key in all_keys if isinstance(key, str) and self.VALID_KEY.match(key)
        )
        ctx.processed["crash_report_keys"] = valid
        if len(valid) != len(all_keys):
            ctx.add_note("invalidkeys: Crash report contains invalid keys")


class CollectorMetadataRule(Rule):
    """`collector_metadata` <- raw `metadata` (what the collector recorded on intake)."""

    def action(self, ctx: CrashContext) -> None:
        metadata = ctx.raw_crash.get("metadata")
        ctx.processed["collector_metadata"] = metadata if isinstance(metadata, dict) else {}


class ConvertModuleSignatureInfoRule(Rule):
    """ModuleSignatureInfo as JSON text: reports submitted as one JSON blob carried it as an
    object (bug 1607806), and the stackwalker reads module signers from the text."""

    def predicate(self, ctx: CrashContext) -> bool:
        value = ctx.raw_crash.get("ModuleSignatureInfo")
        return value is not None and not isinstance(value, str)

    def action(self, ctx: CrashContext) -> None:
        try:
            ctx.raw_crash["ModuleSignatureInfo"] = json.dumps(ctx.raw_crash["ModuleSignatureInfo"])
        except (TypeError, ValueError, RecursionError):
            del ctx.raw_crash["ModuleSignatureInfo"]
            ctx.add_note("ConvertModuleSignatureInfoRule: ModuleSignatureInfo is not JSON")
