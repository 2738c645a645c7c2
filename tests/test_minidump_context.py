"""CPU context identification and register reading (docs/formats/minidump.md §6)."""

from __future__ import annotations

import struct

import pytest

from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64,
    ARCH_ARM64_OLD,
    ARCH_X86,
    amd64_context,
    arm64_context,
    arm_context,
    x86_context,
)
from procsupervisor.workers.stackwalker.minidump.context import (
    UnsupportedContext,
    instruction_pointer,
    parse_context,
    stack_pointer,
)
from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError


def parse(raw: bytes, arch: int | None):
    return parse_context(ByteView(raw), arch)


def test_x86() -> None:
    ctx = parse(x86_context(eip=0x401000, esp=0x12FF00, ebp=0x12FF10, efl=0x246), ARCH_X86)
    assert ctx.cpu == "x86"
    assert (instruction_pointer(ctx), stack_pointer(ctx)) == (0x401000, 0x12FF00)
    assert ctx.get("ebp") == 0x12FF10 and ctx.get("efl") == 0x246
    assert {"eip", "esp", "ebp", "eax"} <= ctx.valid


def test_x86_xstate_extended_context_is_accepted() -> None:
    raw = x86_context(flags=0x1007F, eip=7) + bytes(1147 - 716)
    assert parse(raw, ARCH_X86).registers["eip"] == 7


def test_x86_context_with_wrong_size_is_rejected() -> None:
    with pytest.raises(MinidumpFormatError):
        parse(x86_context() + bytes(4), ARCH_X86)


def test_amd64_and_its_xstate_size() -> None:
    ctx = parse(amd64_context(rip=0x7F0000001234, rsp=0x7FFD0000, r15=5), ARCH_AMD64)
    assert (ctx.cpu, ctx.registers["rip"], ctx.registers["r15"]) == ("amd64", 0x7F0000001234, 5)
    extended = amd64_context(flags=0x10005F, extra=1407 - 1232, rip=9)
    assert parse(extended, ARCH_AMD64).registers["rip"] == 9


def test_amd64_without_cpu_flags_takes_them_from_system_info() -> None:
    # The Breakpad-Mac writer's flags are 0x00100000 with no validity bits; zero CPU bits are
    # filled from SystemInfo.
    assert parse(amd64_context(flags=0, rip=1), ARCH_AMD64).registers["rip"] == 1


def test_arm_and_legacy_flag() -> None:
    ctx = parse(arm_context(pc=0x8000, sp=0x7000, lr=0x8100, r11=0x7010), ARCH_ARM)
    assert (ctx.cpu, ctx.registers["pc"], ctx.registers["r11"]) == ("arm", 0x8000, 0x7010)
    legacy = parse(arm_context(flags=0x40, pc=4), ARCH_ARM)
    assert legacy.registers["pc"] == 4


def test_arm64_new_and_old_layouts() -> None:
    new = parse(arm64_context(pc=0x1000, sp=0x2000, fp=0x2010, x28=3), ARCH_ARM64)
    old = parse(arm64_context(old=True, pc=0x1000, sp=0x2000, fp=0x2010, x28=3), ARCH_ARM64_OLD)
    assert new.cpu == old.cpu == "arm64"
    assert new.registers == old.registers


def test_context_must_agree_with_system_info() -> None:
    with pytest.raises(MinidumpFormatError):
        parse(arm64_context(pc=1), ARCH_AMD64)


def test_x86_context_is_accepted_on_amd64_systems() -> None:
    # WoW64 threads carry x86 contexts under an amd64 SystemInfo.
    assert parse(x86_context(eip=3), ARCH_AMD64).cpu == "x86"


def test_unsupported_cpu() -> None:
    ppc = struct.pack("<I", 0x20000000) + bytes(1000)
    with pytest.raises(UnsupportedContext):
        parse(ppc, None)


def test_garbage_flags() -> None:
    with pytest.raises(MinidumpFormatError):
        parse(struct.pack("<I", 0x00000100) + bytes(100), None)
