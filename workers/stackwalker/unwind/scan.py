"""Stack scanning and Breakpad's plausible-return-address test (docs/formats/breakpad.md §3.6)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CPUContext, FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind.env import FoundCaller, WalkEnv, last_context

RA_SEARCH_WORDS = 40
CONTEXT_RA_SEARCH_WORDS = RA_SEARCH_WORDS * 4


def search_words(callee: StackFrame) -> int:
    """The caller of the context frame may be searched four times farther."""
    return CONTEXT_RA_SEARCH_WORDS if callee.trust is FrameTrust.CONTEXT else RA_SEARCH_WORDS


def address_seems_valid(env: WalkEnv, address: int) -> bool:
    """InstructionAddressSeemsValid: in a module, and in a function if the module has symbols."""
    module = env.modules.module_for_address(address)
    if module is None:
        return False
    if env.symbols is None:
        return True
    if env.symbols_for(module) is None:
        return True
    found = env.lookup(module, address)
    if found is None and env.symbols_for(module) is None:
        return True  # the index turned out to be damaged: treated as not loaded
    return found is not None and bool(found.function_name)


def scan_for_return_address(env: WalkEnv, start: int, words: int) -> tuple[int, int] | None:
    """First (location, value) in `words + 1` stack words from `start` that looks like a return
    address, stopping at the first unreadable word."""
    mask = env.mask
    for index in range(words + 1):
        location = (start + index * env.word_size) & mask
        value = env.read_word(location)
        if value is None:
            return None
        instruction = (value - 1) & mask
        module = env.modules.module_for_address(instruction)
        if module is None or module.is_unloaded:
            continue
        if address_seems_valid(env, instruction):
            return location, value
    return None


def caller_by_scan(env: WalkEnv, last: StackFrame, pc: str, sp: str) -> FoundCaller | None:
    """The caller found by scanning up from `last`'s stack pointer: its pc is the first plausible
    return address and its sp the word above it."""
    callee = last_context([last])
    found = scan_for_return_address(env, callee.registers[sp], search_words(last))
    if found is None:
        return None
    location, caller_pc = found
    registers = dict(callee.registers)
    registers[pc] = caller_pc
    registers[sp] = (location + env.word_size) & env.mask
    return CPUContext(cpu=callee.cpu, registers=registers, valid={pc, sp}), FrameTrust.SCAN
