"""Breakpad's per-thread Walk loop (docs/formats/breakpad.md §3.2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from procsupervisor.workers.stackwalker.model import (
    CPUContext,
    FrameTrust,
    Memory,
    ModuleLookup,
    StackFrame,
    SymbolProvider,
)
from procsupervisor.workers.stackwalker.unwind import amd64, arm, arm64, x86
from procsupervisor.workers.stackwalker.unwind.env import WORD_SIZES, WalkEnv
from procsupervisor.workers.stackwalker.unwind.symbolize import symbolize

CallerFinder = Callable[[WalkEnv, list[StackFrame], bool], StackFrame | None]

_UNWINDERS: dict[str, CallerFinder] = {
    "x86": x86.get_caller_frame,
    "amd64": amd64.get_caller_frame,
    "arm": arm.get_caller_frame,
    "arm64": arm64.get_caller_frame,
}
_PC_REGISTERS = {"x86": "eip", "amd64": "rip", "arm": "pc", "arm64": "pc"}
# Registers the unwinders read unconditionally; a context lacking one reads it as 0.
_GENERAL_REGISTERS = {
    "x86": ("eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx"),
    "amd64": (
        "rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    ),
    "arm": tuple(f"r{i}" for i in range(13)) + ("sp", "lr", "pc"),
    "arm64": tuple(f"x{i}" for i in range(29)) + ("fp", "lr", "sp", "pc"),
}  # fmt: skip

# Breakpad's limits (docs/formats/breakpad.md §3.2); the processor passes its own, lower, frame
# bound.
MAX_FRAMES = 1 << 20
MAX_SCANNED_FRAMES = 1 << 14
_SCANNED_TRUSTS = frozenset({FrameTrust.NONE, FrameTrust.SCAN, FrameTrust.CFI_SCAN})


def walk_thread(
    context: CPUContext,
    memory: Memory | None,
    modules: ModuleLookup,
    symbols: SymbolProvider | None,
    *,
    os_short: str,
    max_frames: int = MAX_FRAMES,
    max_scanned: int = MAX_SCANNED_FRAMES,
    deadline: float | None = None,
    should_stop: Callable[[], str | None] | None = None,
) -> tuple[list[StackFrame], str | None]:
    """Walk one thread's stack; return its frames in output order and why it stopped early.

    The reason is None for a natural end, else "frame limit" (Breakpad's check: more than
    `max_frames` frames, inline ones included), "scan limit" (the walk ended while scanning was
    disabled), "time limit" (`deadline`, a time.monotonic() value, passed) or whatever
    `should_stop`, asked after every frame, answered (the dump's budget, limits.py).
    A CPU without an unwinder yields no frames (Breakpad prints nothing for such threads). With
    no memory only the context frame is produced. `modules` may also be iterable over its
    loaded CodeModules; arm64 uses that for pointer-authentication stripping.
    """
    unwinder = _UNWINDERS.get(context.cpu)
    pc_name = _PC_REGISTERS.get(context.cpu)
    if unwinder is None or pc_name is None:
        return [], None
    env = WalkEnv(
        memory=memory,
        modules=modules,
        symbols=symbols,
        os_short=os_short,
        word_size=WORD_SIZES[context.cpu],
    )
    context = _with_general_registers(context, env.mask)
    if context.cpu == "arm64":
        env.pointer_mask = arm64.pointer_mask(_loaded_module_ends(modules))
        context = arm64.prepare_context(env, context)

    frames: list[StackFrame] = []
    scanned = 0
    frame: StackFrame | None = StackFrame(
        instruction=context.registers[pc_name] & env.mask,
        trust=FrameTrust.CONTEXT,
        context=context,
    )
    while frame is not None:
        frames.extend(symbolize(env, frame))
        frames.append(frame)
        if frame.trust in _SCANNED_TRUSTS:
            scanned += 1
        if len(frames) > max_frames:
            return frames, "frame limit"
        if deadline is not None and time.monotonic() > deadline:
            return frames, "time limit"
        if should_stop is not None and (reason := should_stop()) is not None:
            return frames, reason
        if memory is None:
            return frames, None
        scan_allowed = scanned < max_scanned
        frame = unwinder(env, frames, scan_allowed)
        if frame is None and not scan_allowed:
            return frames, "scan limit"
    return frames, None


def _with_general_registers(context: CPUContext, mask: int) -> CPUContext:
    registers = {name: 0 for name in _GENERAL_REGISTERS[context.cpu]}
    registers.update((name, value & mask) for name, value in context.registers.items())
    return CPUContext(cpu=context.cpu, registers=registers, valid=set(context.valid))


def _loaded_module_ends(modules: ModuleLookup) -> list[int]:
    if not isinstance(modules, Iterable):
        return []
    return [m.end_address for m in modules if not m.is_unloaded]
