"""arm64 unwinder: CFI, x29 frame pointer, scan, pointer-auth stripping (docs/formats/breakpad.md
§4.4)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CPUContext, StackFrame
from procsupervisor.workers.stackwalker.unwind.cfi_walk import CFIRegister, caller_by_cfi
from procsupervisor.workers.stackwalker.unwind.env import (
    FoundCaller,
    WalkEnv,
    accept_caller,
    last_context,
)
from procsupervisor.workers.stackwalker.unwind.frame_pointer import caller_by_link_frame
from procsupervisor.workers.stackwalker.unwind.scan import caller_by_scan

MASK = 0xFFFFFFFFFFFFFFFF
_CONTEXT_NAMES = {"x29": "fp", "x30": "lr"}
_FALLBACKS = {"sp": ".cfa", "pc": ".ra"}
_CALLEE_SAVED = {f"x{i}" for i in range(19, 30)}
CFI_REGISTERS = tuple(
    CFIRegister(_CONTEXT_NAMES.get(name, name), name, _FALLBACKS.get(name), name in _CALLEE_SAVED)
    for name in [f"x{i}" for i in range(31)] + ["sp", "pc"]
)
_CFI_REQUIRED = frozenset({"pc", "sp"})


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
    found = _caller_by_cfi(env, last)
    if found is None:
        found = _caller_by_frame_pointer(env, frames, callee)
    if found is None and scan_allowed:
        found = caller_by_scan(env, last, "pc", "sp")
    if found is None:
        return None
    # The printed address is the instruction itself (pc - 4), not the return address.
    instruction = (found[0].registers["pc"] - 4) & MASK
    return accept_caller(frames, found, "pc", "sp", instruction)


def _caller_by_cfi(env: WalkEnv, last: StackFrame) -> FoundCaller | None:
    found = caller_by_cfi(env, last, CFI_REGISTERS, 0, _CFI_REQUIRED)
    if found is not None:
        registers = found[0].registers
        registers["pc"] = strip_pointer_auth(env, registers["pc"])
    return found


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
) -> FoundCaller | None:
    if "lr" not in callee.valid:
        _repair_link_register(env, frames, callee)
    found = caller_by_link_frame(env, callee, "fp")
    if found is not None:
        registers = found[0].registers
        registers["lr"] = strip_pointer_auth(env, registers["lr"])
    return found
