"""Fields Socorro derives from Firefox's annotations beyond a plain copy (docs/processing.md section
7.5): how the report was submitted, accessibility, distribution, utility actors, theme name."""

from __future__ import annotations

import json
from typing import Any

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig

UNKNOWN = "Unknown"
INFOBAR = "Infobar"


class SubmittedFromRule(Rule):
    """`submitted_from` (SubmittedFrom: Client, CrashReporter, Infobar, AboutCrashes...) and
    `submitted_from_infobar`. Older clients sent only SubmittedFromInfobar, as "1" or, from the
    JSON submission path, as true (bug 1626048)."""

    TRUE_VALUES = ("1", "true", True)

    def action(self, ctx: CrashContext) -> None:
        if "SubmittedFromInfobar" in ctx.raw_crash:
            from_infobar = ctx.raw_crash["SubmittedFromInfobar"] in self.TRUE_VALUES
            submitted_from = INFOBAR if from_infobar else UNKNOWN
        else:
            value = ctx.raw_crash.get("SubmittedFrom")
            submitted_from = value if isinstance(value, str) else UNKNOWN
            from_infobar = submitted_from == INFOBAR
        ctx.processed["submitted_from"] = submitted_from
        ctx.processed["submitted_from_infobar"] = from_infobar


class AccessibilityRule(Rule):
    """`accessibility`: Firefox annotates Accessibility=Active only while the accessibility
    service runs, so an absent annotation means False."""

    def action(self, ctx: CrashContext) -> None:
        ctx.processed["accessibility"] = ctx.raw_crash.get("Accessibility") == "Active"


def _telemetry_environment(ctx: CrashContext) -> Any:
    copied = ctx.processed.get("telemetry_environment")
    if isinstance(copied, dict):
        return copied
    text = ctx.raw_crash.get("TelemetryEnvironment")
    if not isinstance(text, str):
        return {}
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return {}


class DistributionIdRule(Rule):
    """`distribution_id`: who built the product (bugs 1732414, 1747846). The DistributionID
    annotation, else the telemetry environment's partner.distributionId; a null or empty id
    is Mozilla's own build, a missing one is "unknown"."""

    def action(self, ctx: CrashContext) -> None:
        distribution_id = ctx.raw_crash.get("DistributionID")
        if not distribution_id:
            distribution_id = dig(
                _telemetry_environment(ctx), "partner", "distributionId", default="unknown"
            )
        if not distribution_id:
            distribution_id = "mozilla"
        elif not isinstance(distribution_id, str):
            distribution_id = "unknown"
        ctx.processed["distribution_id"] = distribution_id


class UtilityActorsNameRule(Rule):
    """`utility_actors_name`: the comma-separated UtilityActorsName as a list (bug 1788681)."""

    def predicate(self, ctx: CrashContext) -> bool:
        return isinstance(ctx.raw_crash.get("UtilityActorsName"), str)

    def action(self, ctx: CrashContext) -> None:
        names = ctx.raw_crash["UtilityActorsName"].split(",")
        ctx.processed["utility_actors_name"] = [name.strip() for name in names if name.strip()]


class ThemePrettyNameRule(Rule):
    """The default theme's add-on id gets a readable name in `addons` (after AddonsRule)."""

    CONVERSIONS = {
        "{972ce4c6-7e08-4474-a285-3208198ce6fd}": (
            "{972ce4c6-7e08-4474-a285-3208198ce6fd} (default theme)"
        ),
    }

    def predicate(self, ctx: CrashContext) -> bool:
        addons = ctx.processed.get("addons")
        return isinstance(addons, list) and any(
            isinstance(addon, str) and addon.split(":", 1)[0] in self.CONVERSIONS
            for addon in addons
        )

    def action(self, ctx: CrashContext) -> None:
        addons = ctx.processed["addons"]
        for index, addon in enumerate(addons):
            if not isinstance(addon, str):
                continue
            extension, sep, version = addon.partition(":")
            if extension in self.CONVERSIONS:
                addons[index] = self.CONVERSIONS[extension] + sep + version
