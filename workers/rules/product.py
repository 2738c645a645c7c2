"""Product, version, channel and build (Socorro's ProductRule / ESRVersionRewrite /
MajorVersionRule)."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_str

# processed field <- raw annotation; missing ones become "" so searches by field still work.
# In the default ruleset the annotation table has already copied what the raw crash holds, so
# these only fill what it left out.
PRODUCT_FIELDS = (
    ("product", "ProductName"),
    ("version", "Version"),
    ("release_channel", "ReleaseChannel"),
    ("build", "BuildID"),
)
OPTIONAL_PRODUCT_FIELDS = (
    ("productid", "ProductID"),
    ("distributor", "Distributor"),
    ("distributor_version", "Distributor_version"),
    ("vendor", "Vendor"),
)


class ProductRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        for field, annotation in PRODUCT_FIELDS:
            if field not in ctx.processed:
                ctx.processed[field] = as_str(ctx.raw_crash.get(annotation), max_length=200) or ""
        for field, annotation in OPTIONAL_PRODUCT_FIELDS:
            value = as_str(ctx.raw_crash.get(annotation), max_length=200)
            if value and field not in ctx.processed:
                ctx.processed[field] = value


class ESRVersionRewrite(Rule):
    """ESR builds report the plain version; crash-stats groups them as `<version>esr`."""

    def predicate(self, ctx: CrashContext) -> bool:
        return ctx.processed.get("release_channel") == "esr"

    def action(self, ctx: CrashContext) -> None:
        version = ctx.processed.get("version")
        if version:
            if not version.endswith("esr"):
                ctx.processed["version"] = version + "esr"
        else:
            ctx.add_note("ESRVersionRewrite: 'version' missing from esr release processed crash")


class MajorVersionRule(Rule):
    """`major_version`: the integer before the first dot of Version, 0 when there is none."""

    def action(self, ctx: CrashContext) -> None:
        version = ctx.processed.get("version") or ""
        head = version.split(".", 1)[0]
        # isdigit alone lets through digits int() refuses ("²"): ASCII only
        is_number = head.isascii() and head.isdigit() and len(head) < 10
        ctx.processed["major_version"] = int(head) if is_number else 0


class FenixVersionRewriteRule(Rule):
    """Fenix nightlies reported "Nightly YYMMDD HH:MM" as their version; crash-stats groups them
    as 0.0a1 (bug 1624911). Socorro's copy of this rule tests a `product_name` field that no
    rule sets, so it never fires there; this one tests `product`, as the bug intended."""

    def predicate(self, ctx: CrashContext) -> bool:
        version = ctx.processed.get("version")
        return (
            ctx.processed.get("product") == "Fenix"
            and isinstance(version, str)
            and version.startswith("Nightly ")
        )

    def action(self, ctx: CrashContext) -> None:
        ctx.add_note(f"Changed version from {ctx.processed['version']!r} to 0.0a1")
        ctx.processed["version"] = "0.0a1"
