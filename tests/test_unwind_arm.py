"""arm and arm64 unwinding (docs/formats/breakpad.md §4.3, 4.4)."""

from __future__ import annotations

from _unwind_helpers import FakeSymbols, Func, Modules, StackMemory, Symbols, cpu_context, module

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust
from procsupervisor.workers.stackwalker.unwind import walk_thread
from procsupervisor.workers.stackwalker.unwind.arm64 import pointer_mask

STACK = 0x10000
APP32 = module("app", 0x8000_0000, 0x10000)
APP64 = module("app", 0x1_0000_0000, 0x10000)


def arm_context(**values: int) -> CPUContext:
    return cpu_context("arm", **values)


def arm64_context(**values: int) -> CPUContext:
    return cpu_context("arm64", **values)


def symbols(base_funcs: list[Func], **extra) -> Symbols:
    return Symbols({"app": FakeSymbols(funcs=base_funcs, **extra)})


FUNCS = [Func(0x1000, 0x100, "leaf"), Func(0x2000, 0x100, "middle"), Func(0x3000, 0x100, "outer")]


def test_arm_cfi_and_pc_minus_two() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 4, 0x8000_2011)
    rules = ".cfa: sp 8 + .ra: .cfa -4 + ^ r4: .cfa -8 + ^"
    frames, _ = walk_thread(
        arm_context(pc=0x8000_1004, sp=STACK, r4=1, r5=2, r0=3),
        memory,
        Modules(APP32),
        symbols(FUNCS, cfi_init=[(0x1000, 0x100, rules)]),
        os_short="android",
    )
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].instruction == 0x8000_200F == frames[1].printed_address
    assert frames[1].function_name == "middle"
    assert frames[1].context is not None
    regs = frames[1].context.registers
    assert regs["r4"] == 0 and "r4" in frames[1].context.valid  # recovered from the stack
    assert regs["r5"] == 2 and regs["r0"] == 0 and "r0" not in frames[1].context.valid


def test_arm_scans_without_frame_pointer_outside_ios() -> None:
    memory = StackMemory(STACK, 0x1000, 4)
    memory.put(STACK + 0x10, 0x8000_3010)
    memory.put(STACK + 0x100, STACK + 0x200, 0x8000_2010)  # an r7 chain, ignored on Linux
    frames, _ = walk_thread(
        arm_context(pc=0x8000_1004, sp=STACK, r7=STACK + 0x100),
        memory,
        Modules(APP32),
        symbols(FUNCS),
        os_short="linux",
    )
    assert frames[1].trust is FrameTrust.SCAN and frames[1].function_name == "outer"


def test_arm_ios_frame_pointer_uses_lr() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 0x100, STACK + 0x200, 0x8000_3010)
    frames, _ = walk_thread(
        arm_context(pc=0x8000_1004, sp=STACK, r7=STACK + 0x100, lr=0x8000_2011),
        memory,
        Modules(APP32),
        symbols(FUNCS),
        os_short="ios",
    )
    assert [f.trust for f in frames[:3]] == [
        FrameTrust.CONTEXT,
        FrameTrust.FRAME_POINTER,
        FrameTrust.FRAME_POINTER,
    ]
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer"]


def test_arm64_frame_pointer_chain_and_pc_minus_four() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK + 0x100, STACK + 0x200, 0x1_0000_3010)
    memory.put(STACK + 0x200, 0, 0)
    frames, _ = walk_thread(
        arm64_context(pc=0x1_0000_1004, sp=STACK, fp=STACK + 0x100, lr=0x1_0000_2010),
        memory,
        Modules(APP64),
        symbols(FUNCS),
        os_short="mac",
    )
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer"]
    assert frames[1].printed_address == 0x1_0000_200C
    assert frames[2].trust is FrameTrust.FRAME_POINTER


def test_arm64_strips_pointer_authentication() -> None:
    assert pointer_mask([0x1_0001_0000]) == 0x1_FFFF_FFFF
    signed_lr = 0x0023_0001_0000_2010
    memory = StackMemory(STACK, 0x1000, 8)
    frames, _ = walk_thread(
        arm64_context(pc=0x1_0000_1004, sp=STACK, fp=0, lr=signed_lr),
        memory,
        Modules(APP64),
        symbols(FUNCS),
        os_short="ios",
    )
    # fp = 0: a leaf return through lr, allowed on the first unwind
    assert frames[1].function_name == "middle"
    assert frames[1].context is not None
    assert frames[1].context.registers["pc"] == 0x1_0000_2010


def test_arm64_cfi_uses_x29_x30_names() -> None:
    memory = StackMemory(STACK, 0x1000, 8).put(STACK, STACK + 0x300, 0x1_0000_2010)
    rules = ".cfa: sp 16 + .ra: x30 x29: .cfa -16 + ^ x30: .cfa -8 + ^"
    frames, _ = walk_thread(
        arm64_context(pc=0x1_0000_1004, sp=STACK, fp=STACK + 0x40, lr=0x1_0000_2010, x19=9),
        memory,
        Modules(APP64),
        symbols(FUNCS, cfi_init=[(0x1000, 0x100, rules)]),
        os_short="linux",
    )
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].context is not None
    regs = frames[1].context.registers
    assert (regs["fp"], regs["lr"], regs["sp"], regs["x19"]) == (
        STACK + 0x300,
        0x1_0000_2010,
        STACK + 0x10,
        9,
    )


def test_arm64_repairs_lr_through_the_callee_frame_pointer() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK, STACK + 0x100)  # leaf saved x29 at sp
    memory.put(STACK + 0x40, STACK + 0x100, 0x1_0000_3010)  # frame record the context fp names
    rules = ".cfa: sp 16 + .ra: x30 x29: .cfa -16 + ^"
    frames, _ = walk_thread(
        arm64_context(pc=0x1_0000_1004, sp=STACK, fp=STACK + 0x40, lr=0x1_0000_2010),
        memory,
        Modules(APP64),
        symbols(FUNCS, cfi_init=[(0x1000, 0x100, rules)]),
        os_short="linux",
    )
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer"]
    assert [f.trust for f in frames[1:]] == [FrameTrust.CFI, FrameTrust.FRAME_POINTER]
