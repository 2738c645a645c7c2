"""The per-thread walk loop: symbols, inline frames, limits, hostile data (docs/formats/breakpad.md
§3, 7)."""

from __future__ import annotations

import time

from _unwind_helpers import FakeSymbols, Func, Modules, StackMemory, Symbols, cpu_context, module
from hypothesis import given, settings
from hypothesis import strategies as st

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind import walk_thread
from procsupervisor.workers.stackwalker.unwind.walk import MAX_FRAMES

STACK = 0x7FFF0000
APP = module("app", 0x400000, 0x10000)


def context(cpu: str = "amd64", **values: int) -> CPUContext:
    return cpu_context(cpu, **values)


def inline_symbols(new_syntax: bool = True) -> FakeSymbols:
    main = Func(
        0x1000,
        0x100,
        "main",
        lines=[(0x1000, 0x100, 27, "linux_inline.cpp")],
        inlines=[
            ("foo()", "a.cpp" if new_syntax else None, 42, [(0x1000, 0x80)]),
            ("bar()", "b.cpp" if new_syntax else None, 39, [(0x1000, 0x40)]),
            ("func()", "c.cpp" if new_syntax else None, 32, [(0x1010, 0x20)]),
        ],
    )
    return FakeSymbols(funcs=[main, Func(0x2000, 0x100, "caller")])


def test_inline_frames_are_shifted_innermost_first() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    frames, _ = walk_thread(
        context(rip=0x401014, rsp=STACK),
        memory,
        Modules(APP),
        Symbols({"app": inline_symbols()}),
        os_short="linux",
    )
    shown = [(f.function_name, f.source_file, f.source_line) for f in frames]
    assert shown == [
        ("func()", "linux_inline.cpp", 27),
        ("bar()", "c.cpp", 32),
        ("foo()", "b.cpp", 39),
        ("main", "a.cpp", 42),
    ]
    assert [f.trust for f in frames] == [FrameTrust.INLINE] * 3 + [FrameTrust.CONTEXT]
    assert all(f.context is None and f.is_inline for f in frames[:3])
    assert frames[0].function_base == 0x401010 and frames[1].function_base == 0x401000
    assert {f.source_line_base for f in frames} == {0x401000}


def test_old_inline_syntax_keeps_the_line_record_file() -> None:
    frames, _ = walk_thread(
        context(rip=0x401014, rsp=STACK),
        StackMemory(STACK, 0x100, 8),
        Modules(APP),
        Symbols({"app": inline_symbols(new_syntax=False)}),
        os_short="linux",
    )
    assert {f.source_file for f in frames} == {"linux_inline.cpp"}
    assert [f.source_line for f in frames] == [27, 32, 39, 42]


def test_inline_frames_at_a_caller_use_the_instruction_as_printed_address() -> None:
    memory = StackMemory(STACK, 0x1000, 8).put(STACK, 0x401015)  # scanned return address
    frames, _ = walk_thread(
        context(rip=0x402004, rsp=STACK),
        memory,
        Modules(APP),
        Symbols({"app": inline_symbols()}),
        os_short="linux",
    )
    assert [f.function_name for f in frames] == ["caller", "func()", "bar()", "foo()", "main"]
    assert [f.printed_address for f in frames[1:]] == [0x401014] * 3 + [0x401015]


def test_scan_skips_addresses_without_function_in_symbolized_module() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    memory.put(STACK, 0x405001, 0x402010)
    no_symbols, _ = walk_thread(
        context(rip=0x401005, rsp=STACK), memory, Modules(APP), Symbols({}), os_short="linux"
    )
    assert no_symbols[1].printed_address == 0x405001  # no symbol file: any module address
    empty = FakeSymbols()
    with_empty, _ = walk_thread(
        context(rip=0x401005, rsp=STACK),
        memory,
        Modules(APP),
        Symbols({"app": empty}),
        os_short="linux",
    )
    assert len(with_empty) == 1  # an empty symbol file disables scanning into the module
    with_func, _ = walk_thread(
        context(rip=0x401005, rsp=STACK),
        memory,
        Modules(APP),
        Symbols({"app": FakeSymbols(funcs=[Func(0x2000, 0x10, "f")])}),
        os_short="linux",
    )
    assert with_func[1].printed_address == 0x402010


def test_scan_rejects_unloaded_modules() -> None:
    gone = module("gone.so", 0x500000, 0x1000, unloaded=True)
    memory = StackMemory(STACK, 0x1000, 8).put(STACK, 0x500010)
    frames, _ = walk_thread(
        context(rip=0x500004, rsp=STACK),
        memory,
        Modules(APP, gone),
        Symbols({}),
        os_short="linux",
    )
    assert len(frames) == 1 and frames[0].module is gone


def test_module_less_context_frame_continues() -> None:
    memory = StackMemory(STACK, 0x1000, 8).put(STACK, 0x402010)
    frames, _ = walk_thread(
        context(rip=0, rsp=STACK), memory, Modules(APP), Symbols({}), os_short="linux"
    )
    assert frames[0].module is None and frames[0].printed_address == 0
    assert frames[1].printed_address == 0x402010


def walk_long_chain(
    symbols: Symbols, *, max_frames: int = MAX_FRAMES, deadline: float | None = None
) -> tuple[list[StackFrame], str | None]:
    # Each frame's rbp points to the next, with a plausible return address: a long chain.
    memory = StackMemory(STACK, 0x10000, 8)
    for index in range(0, 0x10000 - 16, 16):
        memory.put(STACK + index, STACK + index + 16, 0x401010)
    return walk_thread(
        context(rip=0x401005, rsp=STACK, rbp=STACK),
        memory,
        Modules(APP),
        symbols,
        os_short="linux",
        max_frames=max_frames,
        deadline=deadline,
    )


def test_frame_limit() -> None:
    frames, reason = walk_long_chain(Symbols({}), max_frames=20)
    assert reason == "frame limit" and len(frames) == 21


def test_deadline() -> None:
    frames, reason = walk_long_chain(Symbols({}), deadline=time.monotonic() - 1)
    assert reason == "time limit" and len(frames) == 1


def test_scan_limit_disables_scanning() -> None:
    memory = StackMemory(STACK, 0x1000, 8)
    for index in range(0, 0x100, 8):
        memory.put(STACK + index, 0x401010)
    frames, reason = walk_thread(
        context(rip=0x401005, rsp=STACK, rbp=1),
        memory,
        Modules(APP),
        Symbols({}),
        os_short="linux",
        max_scanned=3,
    )
    assert reason == "scan limit"
    assert [f.trust for f in frames].count(FrameTrust.SCAN) == 3


def test_unsupported_cpu_gives_no_frames() -> None:
    frames, reason = walk_thread(
        CPUContext("ppc", {"srr0": 1}, {"srr0"}),
        None,
        Modules(APP),
        Symbols({}),
        os_short="linux",
    )
    assert frames == [] and reason is None


def test_symbol_files_are_requested_once_per_module() -> None:
    provider = Symbols({"app": FakeSymbols(funcs=[Func(0x1000, 0x10, "f")])})
    walk_long_chain(provider, max_frames=30)
    assert provider.requests == ["/lib/app"]


HOSTILE_CFI = [
    ".cfa: $rsp 8 + .ra: .cfa -8 + ^",
    ".cfa: $rsp .ra: $rsp ^",
    ".cfa: $rsp 0 / .ra: 1",
    ".cfa: $rsp 16 - .ra: .cfa ^ $rbp: .cfa ^",
    ".cfa: $rbp 16 + .ra: .cfa -8 + ^ $rbp: .cfa -16 + ^",
    ".cfa: 1 2 3 .ra: =",
    ".cfa: $rsp 4096 + .ra: 4096",
    "garbage",
]


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(
        st.one_of(
            st.integers(0, 2**64 - 1),
            st.integers(STACK, STACK + 0x200),
            st.integers(0x400000, 0x410000),
        ),
        min_size=1,
        max_size=64,
    ),
    rsp_offset=st.integers(0, 0x200),
    rbp=st.one_of(st.integers(0, 2**64 - 1), st.integers(STACK, STACK + 0x200)),
    rules=st.sampled_from(HOSTILE_CFI),
    os_short=st.sampled_from(["linux", "windows", "mac"]),
)
def test_hostile_stacks_end_cleanly(words, rsp_offset, rbp, rules, os_short) -> None:
    memory = StackMemory(STACK, 0x200, 8)
    for index, word in enumerate(words):
        memory.put(STACK + (index * 8) % 0x200, word)
    symbols = FakeSymbols(funcs=[Func(0x0, 0x8000, "f")], cfi_init=[(0x0, 0x8000, rules)])
    frames, reason = walk_thread(
        context(rip=0x401000, rsp=STACK + rsp_offset, rbp=rbp),
        memory,
        Modules(APP),
        Symbols({"app": symbols}),
        os_short=os_short,
        max_frames=200,
    )
    assert 1 <= len(frames) <= 201
    assert reason in (None, "frame limit")
    sps = [f.context.registers["rsp"] for f in frames if f.context is not None]
    assert all(later > earlier for earlier, later in zip(sps[1:], sps[2:], strict=False))


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.integers(0, 2**32 - 1) | st.integers(0x400000, 0x410000), max_size=64),
    program=st.sampled_from(
        [
            "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =",
            "$eip 0 =",
            "^ ^ =",
            "$T0 $ebp 8 @ = $eip $T0 ^ = $esp $T0 4 + =",
            "$esp .raSearch 0 / =",
        ]
    ),
    ebp=st.integers(0, 2**32 - 1) | st.integers(0x120000, 0x120200),
)
def test_hostile_x86_programs_end_cleanly(words, program, ebp) -> None:
    from _unwind_helpers import frame_data

    memory = StackMemory(0x120000, 0x200, 4)
    for index, word in enumerate(words):
        memory.put(0x120000 + index * 4, word)
    symbols = FakeSymbols(
        funcs=[Func(0x0, 0x8000, "f", param_size=4)],
        stack_win=[(0x0, 0x8000, frame_data(program_string=program, saved_register_size=8))],
    )
    frames, _ = walk_thread(
        context("x86", eip=0x401000, esp=0x120000, ebp=ebp),
        memory,
        Modules(APP),
        Symbols({"app": symbols}),
        os_short="windows",
        max_frames=200,
    )
    assert 1 <= len(frames) <= 201
