"""Add-ons (Socorro's AddonsRule)."""

from __future__ import annotations

from urllib.parse import unquote_plus

from procsupervisor.workers.rules.base import CrashContext, Rule

MAX_ADDONS = 1000


class AddonsRule(Rule):
    """`addons_checked` from EMCheckCompatibility; `addons` as `id:version` strings."""

    def action(self, ctx: CrashContext) -> None:
        checked = None
        if "EMCheckCompatibility" in ctx.raw_crash:
            # Firefox writes "true" or "false"; Socorro reads only "true" as checked.
            checked = str(ctx.raw_crash["EMCheckCompatibility"]).lower() == "true"
        ctx.processed["addons_checked"] = checked

        text = ctx.raw_crash.get("Add-ons")
        addons: list[str] = []
        if isinstance(text, str) and text:
            for item in text.split(",")[:MAX_ADDONS]:
                if not item:
                    continue
                # Queries group by id:version, so every entry gets a version part.
                formatted = item if ":" in item else item + ":NO_VERSION"
                addons.append(unquote_plus(formatted))
        ctx.processed["addons"] = addons
