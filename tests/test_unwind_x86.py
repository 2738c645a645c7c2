"""x86 unwinding: STACK WIN programs and FPO, CFI, ebp chain and scanning (docs/formats/breakpad.md
§4.1)."""

from __future__ import annotations

from _unwind_helpers import (
    FakeSymbols,
    Func,
    Modules,
    StackMemory,
    Symbols,
    cpu_context,
    fpo,
    frame_data,
)
from _unwind_helpers import module as make_module

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust
from procsupervisor.workers.stackwalker.unwind import walk_thread

STACK = 0x120000
APP = make_module("app", 0x400000, 0x10000)
MSVC_PROGRAM = "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + ="


def context(**values: int) -> CPUContext:
    return cpu_context("x86", **values)


def walk(memory: StackMemory, symbols: FakeSymbols, **registers: int):
    return walk_thread(
        context(**registers), memory, Modules(APP), Symbols({"app": symbols}), os_short="windows"
    )[0]


def funcs() -> list[Func]:
    return [
        Func(0x1000, 0x100, "leaf", param_size=8),
        Func(0x2000, 0x100, "middle", param_size=4),
        Func(0x3000, 0x100, "outer"),
        Func(0x4000, 0x100, "top"),
    ]


def test_frame_data_program() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 0x100, STACK + 0x200, 0x402010)
    symbols = FakeSymbols(
        funcs=funcs(), stack_win=[(0x1000, 0x100, frame_data(program_string=MSVC_PROGRAM))]
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK + 0xF0, ebp=STACK + 0x100)
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].function_name == "middle"
    assert frames[1].instruction == 0x40200F and frames[1].printed_address == 0x402010
    assert frames[1].context is not None
    regs = frames[1].context.registers
    assert (regs["esp"], regs["ebp"]) == (STACK + 0x108, STACK + 0x200)
    assert frames[1].context.valid == {"eip", "esp", "ebp"}


def test_fpo_without_base_pointer_keeps_ebp() -> None:
    # locals 8 + saved registers 4: the return address is at esp + 12
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 12, 0x402010)
    symbols = FakeSymbols(
        funcs=funcs(), stack_win=[(0x1000, 0x100, fpo(local_size=8, saved_register_size=4))]
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=0x5555, ebx=0x77)
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].context is not None
    regs = frames[1].context.registers
    assert regs["esp"] == STACK + 16
    assert regs["ebp"] == 0x5555  # ebp recovery is disabled for this program
    assert regs["ebx"] == 0x77 and "ebx" in frames[1].context.valid


def test_fpo_with_base_pointer() -> None:
    memory = StackMemory(STACK, 0x1000, 4)
    memory.put(STACK + 8, 0x402010)  # saved regs 8, locals 0
    memory.put(STACK + 0, STACK + 0x300)  # ebp saved at esp + saved_regs - 8
    symbols = FakeSymbols(
        funcs=funcs(),
        stack_win=[(0x1000, 0x100, fpo(saved_register_size=8, allocates_base_pointer=True))],
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=0)
    assert frames[1].context is not None
    assert frames[1].context.registers["ebp"] == STACK + 0x300
    assert frames[1].context.registers["esp"] == STACK + 12


def test_adjustment_scan_skips_alignment_padding() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 8, 0x402010)  # 2 words of padding
    symbols = FakeSymbols(funcs=funcs(), stack_win=[(0x1000, 0x100, fpo())])
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=0)
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].context is not None and frames[1].context.registers["esp"] == STACK + 12


def test_cfi_with_scanning_when_program_eip_is_outside_modules() -> None:
    memory = StackMemory(STACK, 0x1000, 4)
    memory.put(STACK + 0x100, STACK + 0x200, 0x12345678)  # program finds a bogus eip
    memory.put(STACK + 0x110, 0x403010)  # first plausible word above .raSearchStart + 4
    symbols = FakeSymbols(
        funcs=funcs(),
        stack_win=[(0x1000, 0x100, frame_data(program_string=MSVC_PROGRAM))],
    )
    # .raSearchStart = esp = STACK + 0x100 (no locals/saved regs); adjusted scan finds nothing
    frames = walk(memory, symbols, eip=0x401005, esp=STACK + 0x100, ebp=STACK + 0x100)
    assert frames[1].trust is FrameTrust.CFI_SCAN
    assert frames[1].function_name == "outer"
    assert frames[1].context is not None
    assert frames[1].context.registers["esp"] == STACK + 0x114


def test_failed_program_falls_back_to_scan() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 0x20, 0x402010)
    symbols = FakeSymbols(
        funcs=funcs(), stack_win=[(0x1000, 0x100, frame_data(program_string="$eip $nope ="))]
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=STACK + 0x40)
    assert frames[1].trust is FrameTrust.SCAN
    assert frames[1].context is not None
    assert frames[1].context.registers["esp"] == STACK + 0x24


def test_callee_parameter_size_comes_from_the_youngest_frame() -> None:
    # leaf (params 8) -> middle (params 4) -> outer -> top. Breakpad gives outer's search
    # .cbCalleeParams = 8 (leaf's), not middle's 4.
    memory = StackMemory(STACK, 0x1000, 4)
    memory.put(STACK + 0x0, 0x402010)  # leaf: return address at esp
    memory.put(STACK + 0xC, 0x403010)  # middle: esp + leaf's 8 parameter bytes
    memory.put(STACK + 0x14, 0x401010)  # where the immediate callee's size would look
    memory.put(STACK + 0x18, 0x404010)  # outer: esp + 8
    symbols = FakeSymbols(
        funcs=funcs(),
        stack_win=[
            (0x1000, 0x100, fpo(parameter_size=8)),
            (0x2000, 0x100, fpo(parameter_size=4)),
            (0x3000, 0x100, fpo(parameter_size=0)),
            (0x4000, 0x100, fpo(parameter_size=0)),
        ],
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=0)
    assert [f.function_name for f in frames] == ["leaf", "middle", "outer", "top"]
    assert all(f.trust is FrameTrust.CFI for f in frames[1:])


def test_ebp_chain_then_scan_with_ebp_heuristic() -> None:
    memory = StackMemory(STACK, 0x1000, 4)
    memory.put(STACK + 0x100, STACK + 0x2000, 0x402010)  # saved ebp unreadable next time
    memory.put(STACK + 0x108, STACK + 0x180, 0x403010)  # scanned: ebp just below the return
    frames = walk(memory, FakeSymbols(funcs=funcs()), eip=0x401005, esp=STACK, ebp=STACK + 0x100)
    assert [f.trust for f in frames[:3]] == [
        FrameTrust.CONTEXT,
        FrameTrust.FRAME_POINTER,
        FrameTrust.SCAN,
    ]
    assert frames[2].context is not None
    assert frames[2].context.registers["ebp"] == STACK + 0x180
    assert frames[2].context.registers["esp"] == STACK + 0x110


def test_cfi_requires_ebp() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK, 0x402010)
    rules = ".cfa: $esp 4 + .ra: .cfa 4 - ^"
    symbols = FakeSymbols(funcs=funcs(), cfi_init=[(0x1000, 0x100, rules)])
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=STACK + 0x800)
    assert frames[1].trust is FrameTrust.CFI
    assert frames[1].context is not None and frames[1].context.registers["ebp"] == STACK + 0x800
    assert frames[1].context.registers["eax"] == 0xDADADADA


def test_no_memory_gives_only_the_context_frame() -> None:
    frames, reason = walk_thread(
        context(eip=0x401005, esp=STACK), None, Modules(APP), Symbols({}), os_short="windows"
    )
    assert len(frames) == 1 and reason is None and frames[0].module is APP


def test_fpo_system_call_stub_skips_pointer_to_current_instruction() -> None:
    # The word at esp equals the context eip: Breakpad looks one word further.
    memory = StackMemory(STACK, 0x1000, 4).put(STACK, 0x401005, 0x402010)
    symbols = FakeSymbols(funcs=funcs(), stack_win=[(0x1000, 0x100, fpo())])
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=0)
    assert frames[1].function_name == "middle"
    assert frames[1].context is not None and frames[1].context.registers["esp"] == STACK + 8


def test_alignment_operator_searches_from_ebp() -> None:
    memory = StackMemory(STACK, 0x1000, 4).put(STACK + 0x84, 0x402010)
    program = "$T1 $ebp 8 @ = $eip .raSearchStart ^ = $esp .raSearchStart 4 + ="
    symbols = FakeSymbols(
        funcs=funcs(), stack_win=[(0x1000, 0x100, frame_data(program_string=program))]
    )
    frames = walk(memory, symbols, eip=0x401005, esp=STACK, ebp=STACK + 0x80)
    assert frames[1].function_name == "middle"
    assert frames[1].context is not None and frames[1].context.registers["esp"] == STACK + 0x88
