"""Annotations that need parsing before they are searchable: the probabilistic heap checker's
(PHC, bug 1523278) and breadcrumbs (Socorro's PHCRule and BreadcrumbsRule)."""

from __future__ import annotations

import json
from typing import Any

from procsupervisor.workers.processed_schema import definition_validator
from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_int

MAX_BREADCRUMBS_TEXT = 1_000_000  # characters; Firefox sends a few hundred breadcrumbs at most


class PHCRule(Rule):
    """`phc_kind`, `phc_base_address` (hex; the annotation is decimal), `phc_usable_size` and
    the raw allocation and free stacks (comma-separated addresses)."""

    def predicate(self, ctx: CrashContext) -> bool:
        return isinstance(ctx.raw_crash.get("PHCKind"), str)

    def action(self, ctx: CrashContext) -> None:
        ctx.processed["phc_kind"] = ctx.raw_crash["PHCKind"]
        base = as_int(ctx.raw_crash.get("PHCBaseAddress"))
        if base is not None and base >= 0:
            ctx.processed["phc_base_address"] = hex(base)
        size = as_int(ctx.raw_crash.get("PHCUsableSize"))
        if size is not None:
            ctx.processed["phc_usable_size"] = size
        for field, annotation in (
            ("phc_alloc_stack", "PHCAllocStack"),
            ("phc_free_stack", "PHCFreeStack"),
        ):
            stack = ctx.raw_crash.get(annotation)
            if isinstance(stack, str):
                ctx.processed[field] = stack


class BreadcrumbsRule(Rule):
    """`breadcrumbs`: the Breadcrumbs annotation's list (bare, or in Sentry's `{"values": ...}`
    wrapper as android-components sends it), kept only when it matches the schema's shape."""

    def predicate(self, ctx: CrashContext) -> bool:
        return bool(ctx.raw_crash.get("Breadcrumbs"))

    def action(self, ctx: CrashContext) -> None:
        text = ctx.raw_crash["Breadcrumbs"]
        if not isinstance(text, str) or len(text) > MAX_BREADCRUMBS_TEXT:
            ctx.add_note("Breadcrumbs: malformed: not valid json")
            return
        try:
            breadcrumbs: Any = json.loads(text)
        except (ValueError, RecursionError):
            ctx.add_note("Breadcrumbs: malformed: not valid json")
            return
        if isinstance(breadcrumbs, dict) and "values" in breadcrumbs:
            breadcrumbs = breadcrumbs["values"]
        error = next(definition_validator("breadcrumbs").iter_errors(breadcrumbs), None)
        if error is not None:
            # Public note: the schema keyword that failed, never the client's value.
            ctx.add_note(f"Breadcrumbs: malformed: {error.validator} check failed")
            return
        ctx.processed["breadcrumbs"] = breadcrumbs
