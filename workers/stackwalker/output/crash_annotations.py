"""What rust-minidump's minidump-stackwalk takes from the crash annotations it is given with
`--evil-json` (Socorro passes the raw crash): module signers from ModuleSignatureInfo and the
CPU microcode version from CPUMicrocodeVersion when the dump does not record it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_SIGNATURE_INFO = 1_000_000  # characters; real values are a few KiB
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def module_signers(value: Any) -> dict[str, str]:
    """`{"Signer": ["a.dll", ...], ...}` (an object or its JSON text) -> module -> signer."""
    if isinstance(value, str) and len(value) <= MAX_SIGNATURE_INFO:
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(value, dict):
        return {}
    signers: dict[str, str] = {}
    for signer, modules in value.items():
        if not isinstance(signer, str) or not isinstance(modules, list):
            return {}  # rust-minidump drops the whole value when one entry is malformed
        for module in modules:
            if not isinstance(module, str):
                return {}
            signers[module] = signer
    return signers


def microcode_version(value: Any) -> str | None:
    """`0x...` hex text as rust-minidump prints the number (`0xde`); None for anything else."""
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    digits = value[2:]
    if not 1 <= len(digits) <= 16 or any(c not in HEX_DIGITS for c in digits):
        return None
    return hex(int(digits, 16))


def apply_crash_annotations(json_dump: dict[str, Any], annotations: Mapping[str, Any]) -> None:
    if "modules" not in json_dump:
        return  # a dump that did not process: nothing to annotate
    signers = module_signers(annotations.get("ModuleSignatureInfo"))
    for key in ("modules", "unloaded_modules"):
        for module in json_dump.get(key) or []:
            if isinstance(module, dict):
                module["cert_subject"] = signers.get(module.get("filename") or "")
    json_dump["modules_contains_cert_info"] = bool(signers)

    system_info = json_dump.get("system_info")
    if isinstance(system_info, dict) and system_info.get("cpu_microcode_version") is None:
        system_info["cpu_microcode_version"] = microcode_version(
            annotations.get("CPUMicrocodeVersion")
        )
