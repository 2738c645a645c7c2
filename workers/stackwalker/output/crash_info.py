"""json_dump's `crash_info` as rust-minidump's minidump-stackwalk writes it, the form Socorro
reads: its crash reason text (`SIGSEGV / SEGV_MAPERR`; the `-m` text keeps Breakpad's
`SIGSEGV /SEGV_MAPERR`), possible bit flips and crash inconsistencies.

The fields rust-minidump derives from disassembling the crashing instruction (instruction,
memory accesses, instruction pointer update, adjusted address) are null: this stackwalker does
not disassemble, as rust-minidump reports them for an instruction it cannot decode.
"""

from __future__ import annotations

from typing import Any

from procsupervisor.workers.stackwalker import bitflips
from procsupervisor.workers.stackwalker.memory_regions import MemoryMap, memory_map
from procsupervisor.workers.stackwalker.minidump.context import PRINT_ORDER
from procsupervisor.workers.stackwalker.minidump.crash_reason import LINUX_SIGNALS
from procsupervisor.workers.stackwalker.minidump.exception import ExceptionRecord
from procsupervisor.workers.stackwalker.minidump.system_info import (
    ARCH_AMD64,
    PLATFORM_ANDROID,
    PLATFORM_LINUX,
    SystemInfo,
)
from procsupervisor.workers.stackwalker.process import ProcessState

JSON = dict[str, Any]

DUMP_REQUESTED = 0xFFFFFFFF
# Signal -> its si_code names (1-based), where rust-minidump names the kind of fault.
_SIGNAL_KINDS: dict[int, list[str]] = {
    4: ["ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC", "ILL_PRVREG",
        "ILL_COPROC", "ILL_BADSTK", "ILL_BADIADDR"],
    5: ["TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT", "TRAP_UNK", "TRAP_PERF"],
    7: ["BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR", "BUS_MCEERR_AO"],
    8: ["FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND", "FPE_FLTRES",
        "FPE_FLTINV", "FPE_FLTSUB"],
    11: ["SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR"],
    31: ["SYS_SECCOMP", "SYS_USER_DISPATCH"],
}  # fmt: skip
# Generic si_code values (asm-generic/siginfo.h); SI_USER (0) is left out of the text.
_SI_CODES = {
    0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ", -4: "SI_ASYNCIO",
    -5: "SI_SIGIO", -6: "SI_TKILL", -7: "SI_DETHREAD", -60: "SI_ASYNCNL",
}  # fmt: skip
ACCESS_VIOLATION_WHEN_ACCESS_ALLOWED = "access_violation_when_access_allowed"


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def linux_crash_reason(exc: ExceptionRecord) -> str | None:
    """rust-minidump's text for a Linux/Android signal; None for a code it does not know."""
    if exc.code == DUMP_REQUESTED:
        name = "DUMP_REQUESTED"
    elif 1 <= exc.code <= len(LINUX_SIGNALS):
        name = LINUX_SIGNALS[exc.code - 1]
        kinds = _SIGNAL_KINDS.get(exc.code, [])
        if 1 <= exc.flags <= len(kinds):
            return f"{name} / {kinds[exc.flags - 1]}"
    else:
        return None
    si_code = _signed32(exc.flags)
    if si_code == 0:
        return name
    if si_code in _SI_CODES:
        return f"{name} / {_SI_CODES[si_code]}"
    return f"{name} / 0x{exc.flags & 0xFFFFFFFF:08x}"


def crash_reason_text(state: ProcessState) -> str:
    """The crash reason as rust-minidump writes it; outside Linux and Android both
    stackwalkers write the same text for the reasons Firefox crashes with."""
    exc = state.dump.exception if state.dump is not None else None
    info = state.system_info
    if (
        exc is not None
        and info is not None
        and info.platform_id in (PLATFORM_LINUX, PLATFORM_ANDROID)
    ):
        return linux_crash_reason(exc) or state.crash_reason
    return state.crash_reason


def _exception_registers(state: ProcessState) -> dict[str, int]:
    """The crashing thread's context registers rust-minidump weighs for bit flips."""
    if not 0 <= state.requesting_thread < len(state.threads):
        return {}
    context = state.threads[state.requesting_thread].context
    if context is None or context.cpu != "amd64":
        return {}
    return {
        name: context.registers[name] for name in PRINT_ORDER["amd64"] if name in context.registers
    }


def _possible_bit_flips(
    state: ProcessState, info: SystemInfo, memory: MemoryMap | None, operation: str | None
) -> list[JSON] | None:
    # 64-bit x86 only: rust-minidump skips 32-bit CPUs (false positives) and arm64 (it
    # cannot decode the offset addressing that makes near-null crashes look like flips).
    if info.processor_architecture != ARCH_AMD64:
        return None
    flips = bitflips.possible_bit_flips(
        state.crash_address, memory, operation, _exception_registers(state)
    )
    return [flip.to_json() for flip in flips] or None


def _inconsistencies(
    state: ProcessState, memory: MemoryMap | None, operation: str | None
) -> list[str]:
    """Of rust-minidump's checks, the one that needs no disassembly: an access violation at an
    address whose region allowed that very access."""
    if operation is None or memory is None:
        return []
    region = memory.region_at(state.crash_address)
    if region is not None and bitflips.allows(region, operation):
        return [ACCESS_VIOLATION_WHEN_ACCESS_ALLOWED]
    return []


def render_crash_info(state: ProcessState, hexa: Any) -> JSON:
    """`hexa` formats an address at the dump's pointer width."""
    crash: JSON = {
        "type": None,
        "address": None,
        "adjusted_address": None,
        "instruction": None,
        "memory_accesses": None,
        "instruction_pointer_update": None,
        "possible_bit_flips": None,
        "crash_inconsistencies": None,
        "crashing_thread": state.requesting_thread if state.requesting_thread >= 0 else None,
        "assertion": state.assertion,
    }
    exc = state.dump.exception if state.dump is not None else None
    if not state.crashed or exc is None or state.dump is None:
        return crash
    info = state.system_info
    memory = memory_map(state.dump)
    operation = (
        bitflips.faulting_operation(exc.code, exc.parameters, info.is_windows) if info else None
    )
    crash["type"] = crash_reason_text(state)
    crash["address"] = hexa(state.crash_address)
    crash["possible_bit_flips"] = (
        _possible_bit_flips(state, info, memory, operation) if info is not None else None
    )
    crash["crash_inconsistencies"] = _inconsistencies(state, memory, operation)
    return crash
