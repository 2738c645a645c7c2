"""CPU and OS from Android annotations when the minidump does not say (Socorro's
AndroidCPUInfoRule and AndroidOSInfoRule): Java crashes come without one."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule

# Android_CPU_ABI -> cpu_arch as the stackwalker names it; other ABIs are kept as they are.
ANDROID_CPU_ABI_ARCH = {
    "armeabi-v7a": "arm",
    "arm64-v8a": "arm64",
    "x86_64": "amd64",
}


class AndroidCPUInfoRule(Rule):
    """`cpu_arch` from Android_CPU_ABI. After CPUInfoRule, before PlatformInfoRule."""

    def predicate(self, ctx: CrashContext) -> bool:
        return ctx.processed.get("cpu_arch", "unknown") == "unknown" and isinstance(
            ctx.raw_crash.get("Android_CPU_ABI"), str
        )

    def action(self, ctx: CrashContext) -> None:
        abi = ctx.raw_crash["Android_CPU_ABI"]
        ctx.processed["cpu_arch"] = ANDROID_CPU_ABI_ARCH.get(abi, abi)


class AndroidOSInfoRule(Rule):
    """`os_name` Android and `os_version` the SDK level from Android_Version ("23 (REL)").
    After OSInfoRule."""

    def predicate(self, ctx: CrashContext) -> bool:
        os_name = ctx.processed.get("os_name", "unknown")
        return (
            isinstance(os_name, str)
            and os_name.lower() in ("unknown", "android")
            and isinstance(ctx.raw_crash.get("Android_Version"), str)
        )

    def action(self, ctx: CrashContext) -> None:
        ctx.processed["os_name"] = "Android"
        sdk_version = ctx.raw_crash["Android_Version"].split(" ")[0]
        # Stored as text, but only when it is a number.
        if sdk_version.isascii() and sdk_version.isdigit():
            ctx.processed["os_version"] = sdk_version
