"""CPU and OS facts (Socorro's CPUInfoRule, OSInfoRule, PlatformInfoRule,
OSPrettyVersionRule)."""

from __future__ import annotations

import re

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_str, dig


def _system_str(ctx: CrashContext, key: str) -> str | None:
    return as_str(dig(ctx.processed, "json_dump", "system_info", key), max_length=500)


class CPUInfoRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        ctx.processed["cpu_arch"] = _system_str(ctx, "cpu_arch") or "unknown"
        # An empty cpu_info is what the dump says (Socorro keeps it); only a missing one is
        # "unknown".
        cpu_info = _system_str(ctx, "cpu_info")
        ctx.processed["cpu_info"] = "unknown" if cpu_info is None else cpu_info
        count = dig(ctx.processed, "json_dump", "system_info", "cpu_count")
        ctx.processed["cpu_count"] = count if isinstance(count, int) and count >= 0 else 0
        microcode = _system_str(ctx, "cpu_microcode_version")
        if microcode:
            ctx.processed["cpu_microcode_version"] = microcode


class OSInfoRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        ctx.processed["os_name"] = _system_str(ctx, "os") or "Unknown"
        ctx.processed["os_version"] = _system_str(ctx, "os_ver") or ""


class PlatformInfoRule(Rule):
    """When the minidump says nothing (no dump, or a field missing), the annotations do."""

    # (processed field, annotation, value meaning "the minidump did not say")
    FIELDS = (
        ("cpu_arch", "CPUArchitecture", "unknown"),
        ("cpu_info", "CPUInfo", "unknown"),
        ("os_name", "OS", "Unknown"),
        ("os_version", "OSVersion", ""),
    )

    def action(self, ctx: CrashContext) -> None:
        for field, annotation, unknown in self.FIELDS:
            current = ctx.processed.get(field)
            if current and current != unknown:
                continue
            value = as_str(ctx.raw_crash.get(annotation), max_length=500)
            if value:
                ctx.processed[field] = value
            else:
                ctx.processed.setdefault(field, unknown)


WINDOWS_VERSIONS = {
    "3.5": "Windows NT",
    "4.0": "Windows NT",
    "4.1": "Windows 98",
    "4.9": "Windows Me",
    "5.0": "Windows 2000",
    "5.1": "Windows XP",
    "5.2": "Windows Server 2003",
    "6.0": "Windows Vista",
    "6.1": "Windows 7",
    "6.2": "Windows 8",
    "6.3": "Windows 8.1",
    "10.0": "Windows 10",
}
# Windows 11 still calls itself 10.0; its builds start here.
WINDOWS_11_FIRST_BUILD = 21996
VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def pretty_os_version(os_name: str, os_version: str, lsb_description: str | None) -> str:
    match = VERSION_RE.match(os_version or "")
    if os_name.startswith("Windows"):
        if match is None:
            return os_name
        major, minor = int(match.group(1)), int(match.group(2))
        build = int(match.group(3) or 0)
        if (major, minor) == (10, 0) and build >= WINDOWS_11_FIRST_BUILD:
            return "Windows 11"
        return WINDOWS_VERSIONS.get(f"{major}.{minor}", "Windows Unknown")
    if os_name in ("Mac OS X", "macOS"):
        if match is None:
            return os_name
        major, minor = int(match.group(1)), int(match.group(2))
        if major >= 11:
            return f"macOS {major}"
        if major == 10:
            return f"OS X {major}.{minor}"
        return "OS X Unknown"
    if os_name == "Linux":
        return lsb_description or "Linux"
    if os_name == "Android":
        return f"{os_name} {os_version}" if os_version else os_name
    return os_name


class OSPrettyVersionRule(Rule):
    """`os_pretty_version`: the one OS string a person reads ("Windows 10", "macOS 11")."""

    def action(self, ctx: CrashContext) -> None:
        lsb = as_str(dig(ctx.processed, "json_dump", "lsb_release", "description"))
        if not lsb:
            lsb = as_str(ctx.raw_crash.get("LinuxLSBDescription"))
        ctx.processed["os_pretty_version"] = pretty_os_version(
            ctx.processed.get("os_name") or "Unknown", ctx.processed.get("os_version") or "", lsb
        )
