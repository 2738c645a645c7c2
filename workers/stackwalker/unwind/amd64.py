"""amd64 unwinder: CFI, Windows leaf simulation, rbp chain, scan (docs/formats/breakpad.md §4.2)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind.cfi_walk import CFIRegister, caller_by_cfi
from procsupervisor.workers.stackwalker.unwind.env import (
    FoundCaller,
    WalkEnv,
    accept_caller,
    last_context,
)
from procsupervisor.workers.stackwalker.unwind.scan import caller_by_scan, scan_for_return_address

MASK = 0xFFFFFFFFFFFFFFFF
_CFI_FILL = 0xDADADADADADADADA
_CALLEE_SAVED = {"rbx", "rbp", "r12", "r13", "r14", "r15"}
_FALLBACKS = {"rsp": ".cfa", "rip": ".ra"}
CFI_REGISTERS = tuple(
    CFIRegister(name, f"${name}", _FALLBACKS.get(name), name in _CALLEE_SAVED)
    for name in (
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
    )
)  # fmt: skip
_CFI_REQUIRED = frozenset({"rip", "rsp"})


def get_caller_frame(
    env: WalkEnv, frames: list[StackFrame], scan_allowed: bool
) -> StackFrame | None:
    last = frames[-1]
    callee = last_context(frames)
    found = _caller_by_cfi(env, last)
    if found is None and last.trust is FrameTrust.CONTEXT and env.os_short == "windows":
        found = _caller_by_simulating_return(env, callee)
    if found is None and env.os_short != "windows":
        found = _caller_by_frame_pointer(env, callee)
    if found is None and scan_allowed:
        found = _caller_by_scan(env, last)
    if found is None:
        return None
    regs = found[0].registers
    if env.os_short == "nacl":
        for name in ("rip", "rsp", "rbp"):
            regs[name] &= 0xFFFFFFFF
    rip = regs["rip"]
    return accept_caller(frames, found, "rip", "rsp", (rip - 1) & MASK, return_address=rip)


def _caller_by_cfi(env: WalkEnv, last: StackFrame) -> FoundCaller | None:
    found = caller_by_cfi(env, last, CFI_REGISTERS, _CFI_FILL, _CFI_REQUIRED)
    # Only a zero rip/rsp is rejected here; garbage is left to TerminateWalk.
    if found is None or found[0].registers["rip"] == 0 or found[0].registers["rsp"] == 0:
        return None
    return found


def _caller_by_simulating_return(
    env: WalkEnv, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    # A Windows leaf function touches no callee-saved register: the return address is at rsp.
    found = scan_for_return_address(env, callee.registers["rsp"], 1)
    if found is None:
        return None
    registers = dict(callee.registers)
    registers["rip"] = found[1]
    registers["rsp"] = (found[0] + 8) & MASK
    return CPUContext(cpu="amd64", registers=registers, valid=set(callee.valid)), FrameTrust.LEAF


def _is_non_canonical(address: int) -> bool:
    return 0x7FFFFFFFFFFF < address < 0xFFFF800000000000


def _caller_by_frame_pointer(
    env: WalkEnv, callee: CPUContext
) -> tuple[CPUContext, FrameTrust] | None:
    # Breakpad uses rbp even when it is only a stale copy from a scanned callee.
    last_rbp = callee.registers.get("rbp", 0)
    if last_rbp % 8 != 0:
        return None
    caller_rip = env.read_word(last_rbp + 8)
    caller_rbp = env.read_word(last_rbp)
    if caller_rip is None or caller_rbp is None:
        return None
    caller_rsp = (last_rbp + 16) & MASK
    if _is_non_canonical(caller_rip) or caller_rsp <= last_rbp or caller_rbp < caller_rsp:
        return None
    if env.read_word(caller_rbp) is None:
        return None
    registers = dict(callee.registers)
    registers.update(rip=caller_rip, rsp=caller_rsp, rbp=caller_rbp)
    context = CPUContext(cpu="amd64", registers=registers, valid={"rip", "rsp", "rbp"})
    return context, FrameTrust.FRAME_POINTER


def _caller_by_scan(env: WalkEnv, last: StackFrame) -> FoundCaller | None:
    found = caller_by_scan(env, last, "rip", "rsp")
    if found is None:
        return None
    context = found[0]
    location = (context.registers["rsp"] - 8) & MASK  # where the return address was found
    callee = last_context([last])
    if "rbp" in callee.valid:
        last_rbp = callee.registers["rbp"]
        if (location - 8) & MASK == last_rbp:
            # rbp saved just below the return address: the usual prologue.
            saved = env.read_word(last_rbp)
            if saved is not None and saved > location:
                context.registers["rbp"] = saved
                context.valid.add("rbp")
        elif last_rbp >= location + 8:
            context.registers["rbp"] = last_rbp
            context.valid.add("rbp")
    return found
