"""arm unwinder: CFI, r7 frame pointer on iOS, scan (BREAKPAD.md section 4.3)."""

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

MASK = 0xFFFFFFFF
_FALLBACKS = {"sp": ".cfa", "pc": ".ra"}
CFI_REGISTERS = tuple(
    CFIRegister(name, name, _FALLBACKS.get(name), name in {f"r{i}" for i in range(4, 12)})
    for name in [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
)
# Only iOS code keeps a frame pointer (r7) Breakpad trusts.
IOS_FRAME_POINTER = "r7"


def get_caller_frame(
    env: WalkEnv, frames: list[StackFrame], scan_allowed: bool
) -> StackFrame | None:
    last = frames[-1]
    callee = last_context(frames)
    is_ios = env.os_short == "ios"
    found: tuple[CPUContext, FrameTrust] | None = None
    if not is_ios:
        found = _caller_by_cfi(env, last, callee)
    if found is None and is_ios:
        found = _caller_by_frame_pointer(env, callee)
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
    # The printed address is the instruction itself (pc - 2), not the return address.
    instruction = (pc - 2) & MASK
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
    return context, FrameTrust.CFI


def _caller_by_frame_pointer(
    env: WalkEnv, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    if IOS_FRAME_POINTER not in callee.valid:
        return None
    regs = callee.registers
    last_fp = regs[IOS_FRAME_POINTER]
    if last_fp:
        caller_fp = env.read_word(last_fp)
        caller_lr = env.read_word(last_fp + 4)
        if caller_fp is None or caller_lr is None:
            return None
        caller_sp = (last_fp + 8) & MASK
    else:
        caller_fp, caller_lr, caller_sp = 0, 0, regs["sp"]
    registers = dict(regs)
    registers.update(
        {"pc": regs.get("lr", 0), "lr": caller_lr, IOS_FRAME_POINTER: caller_fp, "sp": caller_sp}
    )
    valid = {"pc", "lr", IOS_FRAME_POINTER, "sp"}
    return CPUContext(cpu="arm", registers=registers, valid=valid), FrameTrust.FRAME_POINTER


def _caller_by_scan(
    env: WalkEnv, last: StackFrame, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    found = scan_for_return_address(env, callee.registers["sp"], search_words(last))
    if found is None:
        return None
    registers = dict(callee.registers)
    registers["pc"] = found[1]
    registers["sp"] = (found[0] + 4) & MASK
    return CPUContext(cpu="arm", registers=registers, valid={"pc", "sp"}), FrameTrust.SCAN
