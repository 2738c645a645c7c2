"""json_dump's crash_info in rust-minidump's form: the crash reason text, possible bit flips
(rust-minidump's heuristic, on the dump's memory map) and crash inconsistencies."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker import bitflips
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.memory_regions import (
    MemoryMap,
    Region,
    parse_linux_maps,
)
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_ARM64,
    ARCH_X86,
    PLATFORM_LINUX,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
    arm64_context,
    x86_context,
)
from procsupervisor.workers.stackwalker.minidump.exception import ExceptionRecord
from procsupervisor.workers.stackwalker.minidump.stream_types import LINUX_MAPS, MEMORY_INFO_LIST
from procsupervisor.workers.stackwalker.output.crash_info import linux_crash_reason

PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE = 0x01, 0x02, 0x04
HEAP = 0x10000000
ACCESS_VIOLATION = 0xC0000005
READ, WRITE = 0, 1


def memory_info_list(regions: list[tuple[int, int, int]]) -> bytes:
    """MINIDUMP_MEMORY_INFO_LIST of (base, size, protection)."""
    data = struct.pack("<IIQ", 16, 48, len(regions))
    for base, size, protection in regions:
        data += struct.pack("<QQIIQIIII", base, base, protection, 0, size, 0x1000, protection, 0, 0)
    return data


def windows_av(access: int, address: int, **registers: int) -> dict[str, object]:
    """The crash_info of an amd64 Windows access violation, with a heap region mapped
    read-write and a no-access page above it."""
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_AMD64)
    synth.add_module(0x400000, 0x10000, "c:\\app.exe")
    context = amd64_context(rip=0x401000, rsp=0x7F0000, **registers)
    synth.add_thread(1, context)
    synth.set_exception(1, ACCESS_VIOLATION, parameters=[access, address], context=context)
    synth.add_raw_stream(
        MEMORY_INFO_LIST,
        memory_info_list([(HEAP, 0x100000, PAGE_READWRITE), (0x20000000, 0x1000, PAGE_NOACCESS)]),
    )
    crash_info: dict[str, object] = walk_minidump(synth.build(), None).to_json_dump()["crash_info"]
    return crash_info


def test_matches_rust_minidump_on_its_linux_dump(testdata: Path) -> None:
    snap = testdata / "rust-minidump/snapshots/test_minidump_stackwalk__linux_json_pretty.snap"
    want = json.loads(snap.read_text().split("---\n", 2)[2])["crash_info"]
    got = walk_minidump((testdata / "rust-minidump/linux-mini.dmp").read_bytes(), None)
    crash_info = got.to_json_dump()["crash_info"]
    for key in ("type", "address", "possible_bit_flips", "crash_inconsistencies"):
        assert crash_info[key] == want[key], key
    # what needs disassembly stays null
    assert crash_info["instruction"] is None and crash_info["memory_accesses"] is None


def test_flip_into_mapped_memory_with_a_nearby_register() -> None:
    flipped = HEAP ^ (1 << 40)
    crash_info = windows_av(READ, flipped, rax=HEAP + 0x10)
    assert crash_info["type"] == "EXCEPTION_ACCESS_VIOLATION_READ"
    assert crash_info["possible_bit_flips"] == [
        {
            "address": f"0x{HEAP:016x}",
            "confidence": 0.625,
            "details": {
                "is_null": False,
                "nearby_registers": 1,
                "poison_registers": False,
                "was_low": False,
                "was_non_canonical": False,
            },
            "source_register": None,
        }
    ]
    assert crash_info["crash_inconsistencies"] == []


def test_poison_in_a_register_halves_the_confidence() -> None:
    crash_info = windows_av(READ, HEAP ^ (1 << 40), rbx=0xE5E5E5E5E5E5E5E5)
    [flip] = crash_info["possible_bit_flips"]
    assert flip["details"]["poison_registers"] is True
    assert flip["confidence"] == 0.125


def test_access_the_map_allowed_is_an_inconsistency_not_a_flip() -> None:
    crash_info = windows_av(WRITE, HEAP + 0x20)
    assert crash_info["possible_bit_flips"] is None
    assert crash_info["crash_inconsistencies"] == ["access_violation_when_access_allowed"]
    # a write to the no-access page is a real violation
    assert windows_av(WRITE, 0x20000010)["crash_inconsistencies"] == []


@pytest.mark.parametrize(
    ("arch", "context"),
    [(ARCH_X86, x86_context(eip=0x401000)), (ARCH_ARM64, arm64_context(pc=0x401000))],
)
def test_no_flips_but_on_amd64(arch: int, context: bytes) -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=arch)
    synth.add_thread(1, context)
    synth.set_exception(1, 11, flags=1, address=0x10, context=context)
    crash_info = walk_minidump(synth.build(), None).to_json_dump()["crash_info"]
    assert crash_info["possible_bit_flips"] is None
    assert crash_info["crash_inconsistencies"] == []


def test_linux_maps_are_the_memory_map_and_no_exception_says_nothing() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    context = amd64_context(rip=0x401000)
    synth.add_thread(1, context)
    synth.add_text_stream(LINUX_MAPS, "7f0000000000-7f0000001000 r--p 00000000 08:01 1 /lib/x\n")
    synth.set_exception(1, 11, flags=1, address=0x7F0000000000 ^ (1 << 12), context=context)
    crash_info = walk_minidump(synth.build(), None).to_json_dump()["crash_info"]
    assert [f["address"] for f in crash_info["possible_bit_flips"]] == ["0x00007f0000000000"]

    quiet = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    quiet.add_thread(1, context)
    crash_info = walk_minidump(quiet.build(), None).to_json_dump()["crash_info"]
    assert crash_info["type"] is None
    assert crash_info["possible_bit_flips"] is None and crash_info["crash_inconsistencies"] is None


def test_unreadable_memory_info_list_is_a_note() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_AMD64)
    context = amd64_context(rip=0x401000)
    synth.add_thread(1, context)
    synth.set_exception(1, ACCESS_VIOLATION, parameters=[READ, 8], context=context)
    synth.add_raw_stream(MEMORY_INFO_LIST, struct.pack("<IIQ", 16, 48, 1000))
    result = walk_minidump(synth.build(), None)
    crash_info = result.to_json_dump()["crash_info"]
    assert any("MemoryInfoList stream unreadable" in note for note in result.notes)
    # without a map, only the null candidate remains (8 is one flip from 0)
    assert [f["address"] for f in crash_info["possible_bit_flips"]] == ["0x0000000000000000"]


@pytest.mark.parametrize(
    ("details", "confidence"),
    [
        (bitflips.BitFlipDetails(), 0.25),
        (bitflips.BitFlipDetails(is_null=True), 0.625),
        (bitflips.BitFlipDetails(is_null=True, was_low=True), 0.4375),
        (bitflips.BitFlipDetails(nearby_registers=2), 0.6625),
        (bitflips.BitFlipDetails(nearby_registers=9), 0.73749995),
        (bitflips.BitFlipDetails(was_non_canonical=True), 0.92499995),
        (bitflips.BitFlipDetails(is_null=True, nearby_registers=1, poison_registers=True), 0.40625),
    ],
)
def test_confidence_in_32_bit_floats_as_rust_prints_them(
    details: bitflips.BitFlipDetails, confidence: float
) -> None:
    assert bitflips.shortest_f32(details.confidence()) == confidence


def test_memory_map_lookup_and_linux_maps_parsing() -> None:
    regions = parse_linux_maps(
        "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/app\n"
        "garbage line\n"
        "00451000-00460000 rw-p 00000000 00:00 0 overlapping\n"
        "7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n"
    )
    memory = MemoryMap(regions)
    assert len(memory) == 2  # the overlapping region is dropped
    assert memory.region_at(0x400000) == Region(0x400000, 0x451FFF, True, False, True)
    assert memory.region_at(0x452000) is None
    assert memory.region_at(0x3FFFFF) is None
    assert memory.region_at(0x7FFD0FFF).writable


@pytest.mark.parametrize(
    ("code", "flags", "text"),
    [
        (11, 1, "SIGSEGV / SEGV_MAPERR"),
        (11, 0, "SIGSEGV"),
        (11, 0x80, "SIGSEGV / SI_KERNEL"),
        (11, 0x1234, "SIGSEGV / 0x00001234"),
        (7, 2, "SIGBUS / BUS_ADRERR"),
        (6, 0xFFFFFFFA, "SIGABRT / SI_TKILL"),
        (5, 1, "SIGTRAP / TRAP_BRKPT"),
        (31, 1, "SIGSYS / SYS_SECCOMP"),
        (0xFFFFFFFF, 0, "DUMP_REQUESTED"),
        (99, 0, None),
    ],
)
def test_linux_crash_reason_text(code: int, flags: int, text: str | None) -> None:
    assert linux_crash_reason(ExceptionRecord(1, code, flags, 0, 0, 0)) == text


def test_machine_readable_keeps_breakpads_reason_text() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    context = amd64_context(rip=0x401000)
    synth.add_thread(1, context)
    synth.set_exception(1, 11, flags=1, address=0x10, context=context)
    result = walk_minidump(synth.build(), None)
    assert "Crash|SIGSEGV /SEGV_MAPERR|0x10|0" in result.to_machine_readable()
    assert result.to_json_dump()["crash_info"]["type"] == "SIGSEGV / SEGV_MAPERR"
