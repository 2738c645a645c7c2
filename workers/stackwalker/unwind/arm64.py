"""arm64 unwinder: CFI, x29 frame pointer, scan, pointer-auth stripping (BREAKPAD.md 4.4)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind.cfi_walk import CFIRegister, caller_by_cfi
from procsupervisor.workers.stackwalker.unwind.env import (
    WalkEnv,
    caller_frame,
    last_context,
    terminate_walk,
)
from procsupervisor.workers.stackwalker.unwind.scan import scan_for_return_address, search_words

MASK = 0xFFFFFFFFFFFFFFFF
_CONTEXT_NAMES = {"x29": "fp", "x30": "lr"}
_FALLBACKS = {"sp": ".cfa", "pc": ".ra"}
_CALLEE_SAVED = {f"x{i}" for i in range(19, 30)}
CFI_REGISTERS = tuple(
    CFIRegister(_CONTEXT_NAMES.get(name, name), name, _FALLBACKS.get(name), name in _CALLEE_SAVED)
    for name in [f"x{i}" for i in range(31)] + ["sp", "pc"]
)


def pointer_mask(module_ends: list[int]) -> int:
    """All bits up to the top bit of the highest loaded module's end address."""
    if not module_ends:
        return MASK
    mask = max(module_ends) & MASK
    shift = 1
    while shift < 64:
        mask |= mask >> shift
        shift *= 2
    return mask


def strip_pointer_auth(env: WalkEnv, pointer: int) -> int:
    stripped = pointer & env.pointer_mask
    module = env.modules.module_for_address(stripped)
    if module is not None and not module.is_unloaded:
        return stripped
    return pointer


def prepare_context(env: WalkEnv, context: CPUContext) -> CPUContext:
    """The context frame's lr may carry a pointer-authentication signature."""
    if "lr" in context.registers:
        registers = dict(context.registers)
        registers["lr"] = strip_pointer_auth(env, registers["lr"])
        return CPUContext(cpu=context.cpu, registers=registers, valid=set(context.valid))
    return context


def get_caller_frame(
    env: WalkEnv, frames: list[StackFrame], scan_allowed: bool
) -> StackFrame | None:
    last = frames[-1]
    callee = last_context(frames)
    found = _caller_by_cfi(env, last, callee)
    if found is None:
        found = _caller_by_frame_pointer(env, frames, callee)
    if found is None and scan_allowed:
        found = _caller_by_scan(env, last, callee)
    if found is None:
        return None
    context, trust = found
    pc = context.registers["pc"]
    if terminate_walk(
        pc, context.registers["sp"], callee.registers["sp"], last.trust is FrameTrust.CONTEXT
    ):
        return None
    # The printed address is the instruction itself (pc - 4), not the return address.
    instruction = (pc - 4) & MASK
    return caller_frame(context, trust, instruction, instruction)


def _caller_by_cfi(
    env: WalkEnv, last: StackFrame, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    rules = env.cfi_rules(last)
    if rules is None:
        return None
    context = caller_by_cfi(env, callee, rules, CFI_REGISTERS, 0)
    if context is None or not {"pc", "sp"} <= context.valid:
        return None
    context.registers["pc"] = strip_pointer_auth(env, context.registers["pc"])
    return context, FrameTrust.CFI


def _repair_link_register(env: WalkEnv, frames: list[StackFrame], callee: CPUContext) -> None:
    """CFI may not recover lr; read it through the frame pointer of the frame below."""
    regs = callee.registers
    if len(frames) < 2 or regs.get("fp", 0) <= regs.get("sp", 0):
        return
    below = next(
        (f.context for f in reversed(frames[:-1]) if f.context is not None and not f.is_inline),
        None,
    )
    if below is None:
        return
    below_fp = below.registers.get("fp", 0)
    saved_fp = 0
    if below_fp:
        read = env.read_word(below_fp)
        if read is None:
            return
        saved_fp = read
    if regs["fp"] != saved_fp:
        return
    saved_lr = 0
    if below_fp:
        read = env.read_word(below_fp + 8)
        if read is None:
            return
        saved_lr = read
    regs["lr"] = strip_pointer_auth(env, saved_lr)


def _caller_by_frame_pointer(
    env: WalkEnv, frames: list[StackFrame], callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    if "lr" not in callee.valid:
        _repair_link_register(env, frames, callee)
    regs = callee.registers
    last_fp = regs.get("fp", 0)
    if last_fp:
        caller_fp = env.read_word(last_fp)
        caller_lr = env.read_word(last_fp + 8)
        if caller_fp is None or caller_lr is None:
            return None
        caller_lr = strip_pointer_auth(env, caller_lr)
        caller_sp = (last_fp + 16) & MASK
    else:
        # A leaf return through lr: legal only on the first unwind, as sp does not move.
        caller_fp, caller_lr, caller_sp = 0, 0, regs["sp"]
    registers = dict(regs)
    registers.update(pc=regs.get("lr", 0), lr=caller_lr, fp=caller_fp, sp=caller_sp)
    context = CPUContext(cpu="arm64", registers=registers, valid={"pc", "lr", "fp", "sp"})
    return context, FrameTrust.FRAME_POINTER


def _caller_by_scan(
    env: WalkEnv, last: StackFrame, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    found = scan_for_return_address(env, callee.registers["sp"], search_words(last))
    if found is None:
        return None
    registers = dict(callee.registers)
    registers["pc"] = found[1]
    registers["sp"] = (found[0] + 8) & MASK
    return CPUContext(cpu="arm64", registers=registers, valid={"pc", "sp"}), FrameTrust.SCAN
