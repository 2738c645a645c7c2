"""Fields read from the stackwalker's json_dump beyond the stacks (Socorro's PossibleBitFlips,
CrashInconsistencies, HasGuardPageAccess, MacBootArgs, MacCrashInfo, SoftErrors,
ModuleURLRewrite and ShutDownHangCrashingThread rules, docs/processing.md §7.5)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig

MAX_SOFT_ERRORS = 4096  # characters of JSON kept: the field is for humans debugging reporters


class PossibleBitFlipsRule(Rule):
    """`possible_bit_flips_max_confidence`: the best bit-flip candidate's confidence as a
    percentage (0-100), since Elasticsearch histograms round to whole numbers."""

    def action(self, ctx: CrashContext) -> None:
        flips = dig(ctx.processed, "json_dump", "crash_info", "possible_bit_flips")
        if not isinstance(flips, list):
            return
        confidences = [flip.get("confidence") or 0.0 for flip in flips if isinstance(flip, dict)]
        numbers = [c for c in confidences if isinstance(c, int | float) and 0 <= c <= 1]
        if numbers:
            ctx.processed["possible_bit_flips_max_confidence"] = int(max(numbers) * 100)


class CrashInconsistenciesRule(Rule):
    """`crash_inconsistencies`: where the crash reason and address contradict the crashing
    instruction or the memory map; null when the stackwalker could not tell."""

    def predicate(self, ctx: CrashContext) -> bool:
        return isinstance(ctx.processed.get("json_dump"), dict)

    def action(self, ctx: CrashContext) -> None:
        found = dig(ctx.processed, "json_dump", "crash_info", "crash_inconsistencies")
        if isinstance(found, list):
            found = [item for item in found if isinstance(item, str)]
        ctx.processed["crash_inconsistencies"] = found if isinstance(found, list) else None


class HasGuardPageAccessRule(Rule):
    """`has_guard_page_access`: set, to True only, when one of the crashing instruction's
    memory accesses fell in a likely guard page (a buffer overflow)."""

    def action(self, ctx: CrashContext) -> None:
        accesses = dig(ctx.processed, "json_dump", "crash_info", "memory_accesses")
        if not isinstance(accesses, list):
            return
        if any(
            isinstance(access, dict) and access.get("is_likely_guard_page") is True
            for access in accesses
        ):
            ctx.processed["has_guard_page_access"] = True


class MacBootArgsRule(Rule):
    """`mac_boot_args` and `has_mac_boot_args` from the macOS kernel boot arguments stream."""

    def predicate(self, ctx: CrashContext) -> bool:
        return bool(dig(ctx.processed, "json_dump", "mac_boot_args"))

    def action(self, ctx: CrashContext) -> None:
        value = ctx.processed["json_dump"]["mac_boot_args"]
        if not isinstance(value, str):
            ctx.add_note(
                f"MacBootArgsRule: mac_boot_args is {type(value).__qualname__} and not str"
            )
            return
        value = value.strip()
        if value:
            ctx.processed["mac_boot_args"] = value
            ctx.processed["has_mac_boot_args"] = True


class MacCrashInfoRule(Rule):
    """`mac_crash_info`: the Mach-O __crash_info records as JSON text, keys sorted so that
    reprocessing gives the same text."""

    def action(self, ctx: CrashContext) -> None:
        ctx.processed.pop("mac_crash_info", None)
        info = dig(ctx.processed, "json_dump", "mac_crash_info")
        if not isinstance(info, dict):
            return
        records = info.get("num_records")
        if isinstance(records, int) and records > 0:
            ctx.processed["mac_crash_info"] = json.dumps(info, sort_keys=True)


class SoftErrorsRule(Rule):
    """`soft_errors`: what went wrong while the minidump was written, as JSON text; present
    (even when empty) whenever the stackwalker reported the key."""

    def predicate(self, ctx: CrashContext) -> bool:
        json_dump = ctx.processed.get("json_dump")
        return isinstance(json_dump, dict) and "soft_errors" in json_dump

    def action(self, ctx: CrashContext) -> None:
        text = json.dumps(ctx.processed["json_dump"]["soft_errors"])
        ctx.processed["soft_errors"] = text[:MAX_SOFT_ERRORS]


class ModuleURLRewriteRule(Rule):
    """Module symbol URLs: a localhost URL (a symbol cache's) is removed, a symbols.mozilla.org
    one loses its query string (signed parameters)."""

    def predicate(self, ctx: CrashContext) -> bool:
        modules = dig(ctx.processed, "json_dump", "modules")
        return isinstance(modules, list) and bool(modules)

    def action(self, ctx: CrashContext) -> None:
        for module in ctx.processed["json_dump"]["modules"]:
            url = module.get("symbol_url") if isinstance(module, dict) else None
            if not url or not isinstance(url, str):
                continue
            parsed = urlsplit(url)
            if "localhost" in parsed.netloc:
                module["symbol_url"] = None
                name = module.get("filename", module.get("debug_file", "unknown"))
                ctx.add_note(f"Redacting symbol url for module {name}")
            elif "symbols.mozilla.org" in parsed.netloc:
                module["symbol_url"] = parsed._replace(query="").geturl()


class ShutDownHangCrashingThreadRule(Rule):
    """A shutdown hang's signature comes from the watchdog thread, but thread 0's stack says
    why shutdown hung: crash-stats shows that one (bug 2037932). Runs after the signature."""

    def action(self, ctx: CrashContext) -> None:
        signature = ctx.processed.get("signature")
        if isinstance(signature, str) and signature.startswith("shutdownhang"):
            ctx.processed["crashing_thread"] = 0
