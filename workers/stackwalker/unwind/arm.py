"""arm unwinder: CFI, r7 frame pointer on iOS, scan (docs/formats/breakpad.md §4.3)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import StackFrame
from procsupervisor.workers.stackwalker.unwind.cfi_walk import CFIRegister, caller_by_cfi
from procsupervisor.workers.stackwalker.unwind.env import (
    FoundCaller,
    WalkEnv,
    accept_caller,
    last_context,
)
from procsupervisor.workers.stackwalker.unwind.frame_pointer import caller_by_link_frame
from procsupervisor.workers.stackwalker.unwind.scan import caller_by_scan

MASK = 0xFFFFFFFF
_FALLBACKS = {"sp": ".cfa", "pc": ".ra"}
CFI_REGISTERS = tuple(
    CFIRegister(name, name, _FALLBACKS.get(name), name in {f"r{i}" for i in range(4, 12)})
    for name in [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
)
_CFI_REQUIRED = frozenset({"pc", "sp"})
# Only iOS code keeps a frame pointer (r7) Breakpad trusts.
IOS_FRAME_POINTER = "r7"


def get_caller_frame(
    env: WalkEnv, frames: list[StackFrame], scan_allowed: bool
) -> StackFrame | None:
    last = frames[-1]
    callee = last_context(frames)
    is_ios = env.os_short == "ios"
    found: FoundCaller | None = None
    if not is_ios:
        found = caller_by_cfi(env, last, CFI_REGISTERS, 0, _CFI_REQUIRED)
    if found is None and is_ios and IOS_FRAME_POINTER in callee.valid:
        found = caller_by_link_frame(env, callee, IOS_FRAME_POINTER)
    if found is None and scan_allowed:
        found = caller_by_scan(env, last, "pc", "sp")
    if found is None:
        return None
    # The printed address is the instruction itself (pc - 2), not the return address.
    instruction = (found[0].registers["pc"] - 2) & MASK
    return accept_caller(frames, found, "pc", "sp", instruction)
