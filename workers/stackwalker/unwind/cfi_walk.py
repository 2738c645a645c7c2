"""Turn a STACK CFI rule set into a caller CPUContext (Breakpad's SimpleCFIWalker and the
arm/arm64 equivalents, BREAKPAD.md sections 4 and 6.4)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.model import CPUContext
from procsupervisor.workers.stackwalker.unwind.cfi import find_caller_registers
from procsupervisor.workers.stackwalker.unwind.env import WalkEnv


@dataclass(frozen=True)
class CFIRegister:
    context_name: str  # name in CPUContext.registers
    cfi_name: str  # name used in STACK CFI rules
    fallback: str | None  # ".ra" / ".cfa" when the rules do not name the register
    callee_saved: bool


def caller_by_cfi(
    env: WalkEnv,
    callee: CPUContext,
    rules: dict[str, str],
    table: tuple[CFIRegister, ...],
    fill: int,
) -> CPUContext | None:
    """Recover the caller's registers; registers not recovered hold `fill` and are invalid."""
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
    return CPUContext(cpu=callee.cpu, registers=registers, valid=valid)
