"""MOZ_CRASH reasons (Socorro's MozCrashReasonRule): some carry dynamic text such as URLs."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule

# Prefixes of reasons built from runtime data (Rust panics, module loading): the raw value may
# hold PII, so the public field gets a placeholder.
DISALLOWED_PREFIXES = (
    "Failed to load module",
    "byte index",
    "do not use eval with system privileges",
)
SANITIZED = "sanitized--see moz_crash_reason_raw"


class MozCrashReasonRule(Rule):
    def predicate(self, ctx: CrashContext) -> bool:
        reason = ctx.raw_crash.get("MozCrashReason")
        return isinstance(reason, str) and bool(reason)

    def action(self, ctx: CrashContext) -> None:
        reason = ctx.raw_crash["MozCrashReason"][:10_000]
        ctx.processed["moz_crash_reason_raw"] = reason
        ctx.processed["moz_crash_reason"] = (
            SANITIZED if reason.startswith(DISALLOWED_PREFIXES) else reason
        )
