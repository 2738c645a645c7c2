"""The arm and arm64 frame-pointer step (docs/formats/breakpad.md §4.3 and 4.4)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust
from procsupervisor.workers.stackwalker.unwind.env import FoundCaller, WalkEnv


def caller_by_link_frame(env: WalkEnv, callee: CPUContext, fp: str) -> FoundCaller | None:
    """The caller of a frame whose `fp` register points at the caller's saved fp and lr; the
    caller's pc is the callee's lr. Pointer-authentication bits are left in place."""
    regs = callee.registers
    last_fp = regs.get(fp, 0)
    if last_fp:
        caller_fp = env.read_word(last_fp)
        caller_lr = env.read_word(last_fp + env.word_size)
        if caller_fp is None or caller_lr is None:
            return None
        caller_sp = (last_fp + 2 * env.word_size) & env.mask
    else:
        # A leaf return through lr: legal only on the first unwind, as sp does not move.
        caller_fp, caller_lr, caller_sp = 0, 0, regs["sp"]
    registers = dict(regs)
    registers.update({"pc": regs.get("lr", 0), "lr": caller_lr, fp: caller_fp, "sp": caller_sp})
    context = CPUContext(cpu=callee.cpu, registers=registers, valid={"pc", "lr", fp, "sp"})
    return context, FrameTrust.FRAME_POINTER
