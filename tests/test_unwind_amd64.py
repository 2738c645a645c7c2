"""amd64 unwinding: CFI, Windows leaf, rbp chain, scan (docs/formats/breakpad.md §4.2)."""

from __future__ import annotations

from _unwind_helpers import (
    REGISTER_NAMES,
    FakeSymbols,
    Func,
    Modules,
    StackMemory,
    Symbols,
    cpu_context,
    module,
)

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust
from procsupervisor.workers.stackwalker.unwind import walk_thread

STACK = 0x7FFF0000
APP = module("app", 0x400000, 0x10000)
LIB = module("lib.so", 0x7F0000000000, 0x10000)


def context(**values: int) -> CPUContext:
    return cpu_context("amd64", **values)


def app_symbols(**extra) -> FakeSymbols:
    return FakeSymbols(
        funcs=[
            Func(0x1000, 0x100, "leaf", lines=[(0x1000, 0x100, 10, "a.c")]),
            Func(0x2000, 0x100, "middle", lines=[(0x2000, 0x80, 20, "a.c")]),
            Func(0x3000, 0x100, "outer"),
        ],
        **extra,
    )


def test_frame_pointer_chain_and_symbolization() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK + 0x100, STACK + 0x200, 0x402010)  # leaf's saved rbp, return address
    memory.put(STACK + 0x200, STACK + 0x300, 0x403020)
    memory.put(STACK + 0x300, 0, 0)
    frames, reason = walk_thread(
        context(rip=0x401005, rsp=STACK + 0xF0, rbp=STACK + 0x100),
        memory,
        Modules(APP),
        Symbols({"app": app_symbols()}),
        os_short="linux",
    )
    assert reason is None
    assert [f.trust for f in frames] == [
        FrameTrust.CONTEXT,
        FrameTrust.FRAME_POINTER,
        FrameTrust.FRAME_POINTER,
    ]
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer"]
    assert frames[0].printed_address == 0x401005
    assert frames[1].instruction == 0x40200F and frames[1].printed_address == 0x402010
    assert frames[1].source_file == "a.c" and frames[1].source_line == 20
    assert frames[1].source_line_base == 0x402000
    assert frames[1].function_base == 0x402000
    assert frames[2].source_file is None and frames[2].module is APP


def test_cfi_then_zero_rip_falls_through() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK + 0x10, 0x402010)  # leaf: return address at rsp+16, rbp saved at rsp+8
    memory.put(STACK + 0x8, STACK + 0x500)
    cfi = [
        (0x1000, 0x100, ".cfa: $rsp 24 + .ra: .cfa -8 + ^ $rbp: .cfa -16 + ^"),
        (0x2000, 0x100, ".cfa: $rsp 8 + .ra: 0"),
    ]
    frames, _ = walk_thread(
        context(rip=0x401005, rsp=STACK, rbp=0x1234),
        memory,
        Modules(APP),
        Symbols({"app": app_symbols(cfi_init=cfi)}),
        os_short="linux",
    )
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].context is not None
    assert frames[1].context.registers["rsp"] == STACK + 0x18
    assert frames[1].context.registers["rbp"] == STACK + 0x500
    assert frames[1].context.registers["rax"] == 0xDADADADADADADADA
    assert "rax" not in frames[1].context.valid and "rbx" in frames[1].context.valid
    # middle's CFI says rip = 0: not the end, Breakpad falls through to the rbp chain
    # (rbp points to unreadable memory) and then to scanning, which finds nothing.
    assert len(frames) == 2


def test_cfi_delta_rules_apply_up_to_the_address() -> None:
    memory = StackMemory(STACK, 0x1000, 8).put(STACK + 0x8, 0x402010)
    symbols = app_symbols(
        cfi_init=[(0x1000, 0x100, ".cfa: $rsp 8 + .ra: .cfa -8 + ^")],
        cfi_deltas={0x1004: ".cfa: $rsp 16 +", 0x1010: ".cfa: $rsp 64 +"},
    )
    frames, _ = walk_thread(
        context(rip=0x401005, rsp=STACK),
        memory,
        Modules(APP),
        Symbols({"app": symbols}),
        os_short="linux",
    )
    assert frames[1].function_name == "middle"
    assert frames[1].context is not None and frames[1].context.registers["rsp"] == STACK + 0x10


def test_scan_prefers_plausible_addresses_and_keeps_rbp() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK, 0x405000)  # outside every module
    memory.put(STACK + 0x8, 0x400001)  # in app, but no function covers 0x400000
    memory.put(STACK + 0x10, 0x7F0000000100)  # lib.so has no symbol file: plausible
    frames, _ = walk_thread(
        context(rip=0x401005, rsp=STACK, rbp=STACK + 0x800),
        memory,
        Modules(APP, LIB),
        Symbols({"app": app_symbols()}),
        os_short="linux",
    )
    assert frames[1].trust is FrameTrust.SCAN
    assert frames[1].module is LIB and frames[1].printed_address == 0x7F0000000100
    assert frames[1].context is not None
    assert frames[1].context.registers["rsp"] == STACK + 0x18
    # rbp above the found location stays valid, so the next step may use it.
    assert "rbp" in frames[1].context.valid


def test_windows_leaf_then_scan_no_frame_pointer() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK, 0)  # [rsp] zeroed: the leaf scan looks at rsp+8 too
    memory.put(STACK + 0x8, 0x402010)
    memory.put(STACK + 0x40, 0x403010)
    # an rbp chain that Windows must ignore
    memory.put(STACK + 0x100, STACK + 0x200, 0x401050)
    frames, _ = walk_thread(
        context(rip=0x401005, rsp=STACK, rbp=STACK + 0x100),
        memory,
        Modules(APP),
        Symbols({"app": app_symbols()}),
        os_short="windows",
    )
    # the word 0x401050 inside the ignored rbp chain is found by scanning, not by rbp
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer", "leaf"]
    assert frames[3].trust is FrameTrust.SCAN
    assert frames[1].trust not in (FrameTrust.SCAN, FrameTrust.FRAME_POINTER)
    assert frames[1].context is not None
    assert frames[1].context.registers["rsp"] == STACK + 0x10
    assert frames[1].context.valid == set(REGISTER_NAMES["amd64"])
    assert frames[2].trust is FrameTrust.SCAN


def test_frame_pointer_rejects_misaligned_and_non_canonical() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK + 0x100, STACK + 0x200, 0x0000800000000000)
    # rbp + 0x100 leads to a non-canonical return address; rbp + 0x104 is misaligned.
    for rbp in (STACK + 0x100, STACK + 0x104):
        frames, _ = walk_thread(
            context(rip=0x401005, rsp=STACK + 0xF0, rbp=rbp),
            memory,
            Modules(APP),
            Symbols({}),
            os_short="linux",
        )
        assert len(frames) == 1


def test_cyclic_frame_pointers_end_the_walk() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK + 0x100, STACK + 0x100, 0x402010)  # rbp points to itself
    frames, reason = walk_thread(
        context(rip=0x401005, rsp=STACK + 0xF0, rbp=STACK + 0x100),
        memory,
        Modules(APP),
        Symbols({}),
        os_short="linux",
    )
    assert reason is None
    assert len(frames) <= 3


def test_garbage_cfi_return_address_is_accepted() -> None:
    memory = StackMemory(STACK, 0x1000, 8).put(STACK, 0x6172747320746F6E)
    frames, _ = walk_thread(
        context(rip=0x401005, rsp=STACK),
        memory,
        Modules(APP),
        Symbols(
            {"app": app_symbols(cfi_init=[(0x1000, 0x100, ".cfa: $rsp 8 + .ra: .cfa -8 + ^")])}
        ),
        os_short="linux",
    )
    assert frames[1].module is None and frames[1].printed_address == 0x6172747320746F6E
