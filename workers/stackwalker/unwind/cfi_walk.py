"""Turn a STACK CFI rule set into a caller CPUContext (Breakpad's SimpleCFIWalker and the
arm/arm64 equivalents, docs/formats/breakpad.md §4 and 6.4)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind.cfi import find_caller_registers
from procsupervisor.workers.stackwalker.unwind.env import FoundCaller, WalkEnv, last_context


@dataclass(frozen=True)
class CFIRegister:
    context_name: str  # name in CPUContext.registers
    cfi_name: str  # name used in STACK CFI rules
    fallback: str | None  # ".ra" / ".cfa" when the rules do not name the register
    callee_saved: bool


def caller_by_cfi(
    env: WalkEnv,
    frame: StackFrame,
    table: tuple[CFIRegister, ...],
    fill: int,
    required: frozenset[str],
) -> FoundCaller | None:
    """Recover the caller of `frame` from its STACK CFI rules; None without rules or when a
    `required` register is not recovered. Registers not recovered hold `fill` and are invalid."""
    rules = env.cfi_rules(frame)
    if rules is None:
        return None
    callee = last_context([frame])
    callee_values = {
        reg.cfi_name: callee.registers[reg.context_name]
        for reg in table
        if reg.context_name in callee.valid and reg.context_name in callee.registers
    }
    recovered = find_caller_registers(rules, callee_values, env.memory, env.word_size)
    if recovered is None:
        return None
    registers = {reg.context_name: fill for reg in table}
    valid: set[str] = set()
    for reg in table:
        value = recovered.get(reg.cfi_name)
        if value is None and reg.callee_saved and reg.context_name in callee.valid:
            value = callee.registers.get(reg.context_name)
        if value is None and reg.fallback is not None:
            value = recovered.get(reg.fallback)
        if value is not None:
            registers[reg.context_name] = value & env.mask
            valid.add(reg.context_name)
    if not required <= valid:
        return None
    return CPUContext(cpu=callee.cpu, registers=registers, valid=valid), FrameTrust.CFI
