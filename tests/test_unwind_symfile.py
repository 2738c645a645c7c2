"""Walking with real `.sym` text through the symbols package's index (contract check)."""

from __future__ import annotations

from _unwind_helpers import FakeSymbols, Func, Modules, StackMemory, module

from procsupervisor.workers.stackwalker.model import CodeModule, CPUContext, FrameTrust
from procsupervisor.workers.stackwalker.symbols import SymbolIndex, parse_sym
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError
from procsupervisor.workers.stackwalker.unwind import walk_thread

APP = module("app", 0x400000, 0x10000)

X86_SYM = b"""MODULE windows x86 0000 app.pdb
FILE 1 c:\\src\\app.cc
FUNC 1000 100 8 leaf(int)
1000 100 12 1
FUNC 2000 100 0 main
2000 80 30 1
STACK WIN 4 1000 100 0 0 8 0 0 0 1 $T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =
"""

AMD64_SYM = b"""MODULE Linux x86_64 0000 app
FILE 0 app.c
FILE 1 inl.h
INLINE_ORIGIN 0 helper
FUNC 1000 100 0 leaf
INLINE 0 7 1 0 1010 20
1000 100 40 0
FUNC 2000 100 0 main
2000 100 50 0
STACK CFI INIT 1000 100 .cfa: $rsp 8 + .ra: .cfa -8 + ^
STACK CFI 1004 .cfa: $rsp 16 + $rbp: .cfa -16 + ^
"""


class Provider:
    def __init__(self, index: SymbolIndex | FakeSymbols) -> None:
        self.index = index

    def get_symbols(self, module: CodeModule) -> SymbolIndex | FakeSymbols:
        return self.index


def test_stack_win_from_a_sym_file() -> None:
    stack = 0x120000
    memory = StackMemory(stack, 0x1000, 4).put(stack + 0x100, stack + 0x200, 0x402010)
    registers = dict.fromkeys(["eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx"], 0)
    registers.update(eip=0x401005, esp=stack + 0xF0, ebp=stack + 0x100)
    frames, _ = walk_thread(
        CPUContext("x86", registers, set(registers)),
        memory,
        Modules(APP),
        Provider(parse_sym(X86_SYM)),
        os_short="windows",
    )
    assert [(f.function_name, f.source_file, f.source_line) for f in frames] == [
        ("leaf(int)", "c:\\src\\app.cc", 12),
        ("main", "c:\\src\\app.cc", 30),
    ]
    assert frames[1].trust is FrameTrust.CFI and frames[1].printed_address == 0x402010


def test_cfi_deltas_and_inline_frames_from_a_sym_file() -> None:
    stack = 0x7FFF0000
    memory = StackMemory(stack, 0x1000, 8).put(stack, stack + 0x800, 0x402010)
    registers = dict.fromkeys(["rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"], 0)
    registers.update(rip=0x401014, rsp=stack)
    frames, _ = walk_thread(
        CPUContext("amd64", registers, set(registers)),
        memory,
        Modules(APP),
        Provider(parse_sym(AMD64_SYM)),
        os_short="linux",
    )
    assert [(f.function_name, f.source_file, f.source_line) for f in frames] == [
        ("helper", "app.c", 40),
        ("leaf", "inl.h", 7),
        ("main", "app.c", 50),
    ]
    assert frames[0].trust is FrameTrust.INLINE and frames[0].function_base == 0x401010
    assert frames[2].context is not None
    assert frames[2].context.registers["rbp"] == stack + 0x800


class DamagedIndex(FakeSymbols):
    def lookup(self, rel: int):
        raise SymbolIndexError("corrupt symbol index")


def test_damaged_index_counts_as_missing_symbols() -> None:
    stack = 0x7FFF0000
    memory = StackMemory(stack, 0x1000, 8).put(stack, 0x402010)
    registers = {"rip": 0x401005, "rsp": stack}
    frames, _ = walk_thread(
        CPUContext("amd64", registers, set(registers)),
        memory,
        Modules(APP),
        Provider(DamagedIndex(funcs=[Func(0x1000, 0x10, "f")])),
        os_short="linux",
    )
    assert [f.function_name for f in frames] == [None, None]
    assert frames[1].trust is FrameTrust.SCAN and frames[1].printed_address == 0x402010
