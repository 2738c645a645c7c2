#!/usr/bin/env python3
"""How closely our processed crashes agree with Socorro's on real Firefox crashes.

For each crash of testdata/socorro-processed/ (the raw crash in the collector's layout and the
processed crash Socorro's own processor made of it, less the fields computed from the minidump),
this processes the raw crash with our default ruleset and a synthetic minidump of the same
platform (the real dumps are not in the data set), then prints key agreement (Socorro's keys
we produce) and value agreement (equal values on the keys both have), with every difference.
Keys we add beyond Socorro's file are listed unless they are of the kinds the data set removed.

    .venv/bin/python scripts/socorro_agreement.py [--testdata DIR]

Exit status 0 when both agreements are 100 %, 1 otherwise, 2 on a usage or data error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procsupervisor.metrics import NullMetrics
from procsupervisor.workers.processor import Processor, validate_processed_crash
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64,
    ARCH_X86,
    PLATFORM_ANDROID,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
    arm64_context,
    arm_context,
    x86_context,
)

ROOT = Path(__file__).resolve().parent.parent

NAMES = (
    "android-aarch64",
    "android-arm",
    "linux-x86",
    "linux-x86_64",
    "macos-x86_64",
    "windows-aarch64",
    "windows-x86",
    "windows-x86_64",
)
MAIN_DUMP = "upload_file_minidump"
# What socorro-processed/README.md says was removed from Socorro's files: fields computed from
# the minidump and clock-dependent processing fields. Our processed crash has them too.
REMOVED_FROM_REFERENCE = frozenset(
    {
        "json_dump", "signature", "signature_debug", "proto_signature", "crashing_thread",
        "crashing_thread_name", "reason", "address", "last_error_value", "cpu_arch", "cpu_info",
        "cpu_count", "cpu_microcode_version", "os_name", "os_version", "os_pretty_version",
        "thread_count", "modules_in_stack", "missing_symbols", "topmost_filenames",
        "mdsw_return_code", "mdsw_status_string", "mdsw_stderr", "stackwalk_version", "success",
        "crash_inconsistencies", "possible_bit_flips_max_confidence", "has_guard_page_access",
        "additional_minidumps", "soft_errors", "mac_boot_args", "has_mac_boot_args",
        "mac_crash_info", "date_processed", "started_datetime", "completed_datetime",
        "processor_notes", "processor_history",
    }
)  # fmt: skip
# Fields that differ from Socorro's for a documented reason: field -> reason. Empty: none do.
DOCUMENTED_DIFFERENCES: dict[str, str] = {}

MODULE_BASE = 0x10000000
CODE_ADDRESS = MODULE_BASE + 0x1234
STACK_BASE = 0x7FF000


def synthetic_dump(name: str) -> bytes:
    """A one-thread crash in the main module, on the crash's platform and CPU."""
    os_part, _, cpu = name.partition("-")
    platform = {
        "android": PLATFORM_ANDROID,
        "linux": PLATFORM_LINUX,
        "macos": PLATFORM_MAC,
        "windows": PLATFORM_WINDOWS,
    }[os_part]
    if cpu == "x86":
        arch, context = ARCH_X86, x86_context(eip=CODE_ADDRESS, esp=STACK_BASE)
    elif cpu == "x86_64":
        arch, context = ARCH_AMD64, amd64_context(rip=CODE_ADDRESS, rsp=STACK_BASE)
    elif cpu == "arm":
        arch, context = ARCH_ARM, arm_context(pc=CODE_ADDRESS, sp=STACK_BASE)
    else:
        arch, context = ARCH_ARM64, arm64_context(pc=CODE_ADDRESS, sp=STACK_BASE)
    synth = SynthMinidump(platform_id=platform, arch=arch)
    executable = "firefox.exe" if platform == PLATFORM_WINDOWS else "firefox"
    synth.add_module(MODULE_BASE, 0x100000, executable)
    stack = synth.add_memory(STACK_BASE, bytes(0x100))
    synth.add_thread(1, context, stack)
    if platform == PLATFORM_WINDOWS:
        # EXCEPTION_ACCESS_VIOLATION_READ at address 0
        synth.set_exception(1, 0xC0000005, parameters=[0, 0], context=context)
    elif platform == PLATFORM_MAC:
        synth.set_exception(1, 1, flags=1, context=context)  # EXC_BAD_ACCESS
    else:
        synth.set_exception(1, 11, flags=1, context=context)  # SIGSEGV / SEGV_MAPERR
    return synth.build()


@dataclass
class Comparison:
    name: str
    keys: int = 0  # Socorro's keys
    keys_found: int = 0
    values_equal: int = 0
    missing: list[str] = field(default_factory=list)
    different: list[tuple[str, Any, Any]] = field(default_factory=list)  # key, ours, Socorro's
    extra: list[str] = field(default_factory=list)


def compare(name: str, ours: dict[str, Any], socorros: dict[str, Any]) -> Comparison:
    result = Comparison(name, keys=len(socorros))
    for key, expected in socorros.items():
        if key not in ours:
            result.missing.append(key)
            continue
        result.keys_found += 1
        if ours[key] == expected:
            result.values_equal += 1
        else:
            result.different.append((key, ours[key], expected))
    result.extra = sorted(set(ours) - set(socorros) - REMOVED_FROM_REFERENCE)
    return result


def process(processor: Processor, testdata: Path, name: str) -> dict[str, Any]:
    raw = json.loads((testdata / "socorro-processed" / f"{name}.raw_crash.json").read_text())
    processed = processor.process(raw["uuid"], raw, {MAIN_DUMP: synthetic_dump(name)})
    validate_processed_crash(processed)
    return processed


def compare_all(testdata: Path) -> list[Comparison]:
    processor = Processor(symbols=None, metrics=NullMetrics())
    results = []
    for name in NAMES:
        reference = testdata / "socorro-processed" / f"{name}.processed.json"
        socorros = json.loads(reference.read_text())
        results.append(compare(name, process(processor, testdata, name), socorros))
    return results


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100.0 * part / whole:.1f} %)" if whole else "0/0"


def report(results: list[Comparison]) -> str:
    lines = []
    for result in results:
        lines.append(
            f"{result.name}: keys {_percent(result.keys_found, result.keys)}, "
            f"values {_percent(result.values_equal, result.keys_found)}"
        )
        lines += [f"  missing key: {key}" for key in result.missing]
        for key, ours, theirs in result.different:
            reason = DOCUMENTED_DIFFERENCES.get(key, "undocumented")
            lines.append(f"  {key} ({reason}): ours {_short(ours)} | Socorro {_short(theirs)}")
        lines += [f"  key Socorro's file does not have: {key}" for key in result.extra]
    keys = sum(r.keys for r in results)
    found = sum(r.keys_found for r in results)
    equal = sum(r.values_equal for r in results)
    lines.append(f"TOTAL: keys {_percent(found, keys)}, values {_percent(equal, found)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("PROCSUPERVISOR_TESTDATA") or str(ROOT.parent / "shared" / "testdata")
    parser.add_argument("--testdata", type=Path, default=Path(default))
    args = parser.parse_args(argv)
    if not (args.testdata / "socorro-processed").is_dir():
        print(f"socorro_agreement: no socorro-processed/ under {args.testdata}", file=sys.stderr)
        return 2
    try:
        results = compare_all(args.testdata)
    except (OSError, ValueError) as exc:
        print(f"socorro_agreement: {exc}", file=sys.stderr)
        return 2
    print(report(results))
    perfect = all(not r.missing and not r.different and not r.extra for r in results)
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main())
