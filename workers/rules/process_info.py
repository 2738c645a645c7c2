"""Which process crashed: process type and plugin fields (Socorro's ProcessTypeRule,
PluginRule)."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_str


class ProcessTypeRule(Rule):
    """`process_type`: the ProcessType annotation; absent or `main` is the `parent` process."""

    def action(self, ctx: CrashContext) -> None:
        value = as_str(ctx.raw_crash.get("ProcessType"), max_length=100) or "parent"
        ctx.processed["process_type"] = "parent" if value == "main" else value


class PluginRule(Rule):
    def predicate(self, ctx: CrashContext) -> bool:
        return ctx.processed.get("process_type") == "plugin"

    def action(self, ctx: CrashContext) -> None:
        for field, annotation in (
            ("plugin_filename", "PluginFilename"),
            ("plugin_name", "PluginName"),
            ("plugin_version", "PluginVersion"),
        ):
            ctx.processed[field] = as_str(ctx.raw_crash.get(annotation), max_length=500) or ""
