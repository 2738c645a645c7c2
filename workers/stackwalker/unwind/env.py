"""What every unwinder needs while walking one thread: memory, modules, symbols, OS.

Also holds Breakpad's shared helpers (TerminateWalk, docs/formats/breakpad.md §3.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    CPUContext,
    FrameTrust,
    Memory,
    ModuleLookup,
    StackFrame,
    SymbolDiscarder,
    SymbolIndexProtocol,
    SymbolLookup,
    SymbolProvider,
    WindowsFrameInfo,
)
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError
from procsupervisor.workers.stackwalker.unwind.words import read_word, word_mask

T = TypeVar("T")

WORD_SIZES = {"x86": 4, "arm": 4, "amd64": 8, "arm64": 8}

# A recovered caller context and how far it can be trusted.
FoundCaller = tuple[CPUContext, FrameTrust]


@dataclass
class WalkEnv:
    memory: Memory | None
    modules: ModuleLookup
    symbols: SymbolProvider | None
    os_short: str
    word_size: int
    # arm64 pointer-authentication strip mask (docs/formats/breakpad.md §4.4); all ones elsewhere.
    pointer_mask: int = 0xFFFFFFFFFFFFFFFF
    # Symbol sets by code_file, as Breakpad caches them (docs/formats/breakpad.md §2.3); walk_thread
    # promises this whatever provider it is given (a damaged index is cached as None).
    _symbol_cache: dict[str, SymbolIndexProtocol | None] = field(default_factory=dict)
    # STACK WIN records remembered on x86 frames, keyed by id(frame) (section 4.1 A).
    windows_info: dict[int, WindowsFrameInfo] = field(default_factory=dict)

    @property
    def mask(self) -> int:
        return word_mask(self.word_size)

    def read_word(self, address: int) -> int | None:
        return read_word(self.memory, address, self.word_size)

    def readable(self, address: int, size: int) -> bool:
        if self.memory is None:
            return False
        return self.memory.read(address & self.mask, size) is not None

    def symbols_for(self, module: CodeModule | None) -> SymbolIndexProtocol | None:
        if module is None or self.symbols is None or module.is_unloaded:
            return None
        key = module.code_file
        if key not in self._symbol_cache:
            self._symbol_cache[key] = self.symbols.get_symbols(module)
        return self._symbol_cache[key]

    def lookup(self, module: CodeModule | None, address: int) -> SymbolLookup | None:
        """Breakpad's LookupAddress for an absolute address inside `module`."""
        return self._query(module, address, lambda index, rel: index.lookup(rel))

    def cfi_rules(self, frame: StackFrame) -> dict[str, str] | None:
        return self._query(
            frame.module, frame.instruction, lambda index, rel: index.find_cfi_rules(rel)
        )

    def windows_frame_info(self, frame: StackFrame) -> WindowsFrameInfo | None:
        return self._query(
            frame.module, frame.instruction, lambda index, rel: index.find_windows_frame_info(rel)
        )

    def _query(
        self,
        module: CodeModule | None,
        address: int,
        query: Callable[[SymbolIndexProtocol, int], T | None],
    ) -> T | None:
        index = self.symbols_for(module)
        if index is None or module is None:
            return None
        try:
            return query(index, address - module.base_address)
        except SymbolIndexError as exc:
            # A damaged symbol index counts as a symbol file that failed to load, so one bad
            # cache entry cannot abort the walk.
            self._symbol_cache[module.code_file] = None
            if isinstance(self.symbols, SymbolDiscarder):
                self.symbols.discard_symbols(module, str(exc))
            return None


def terminate_walk(caller_pc: int, caller_sp: int, callee_sp: int, first_unwind: bool) -> bool:
    """Breakpad's end-of-stack test: low pc, or a stack pointer that does not advance."""
    if caller_pc < 0x1000:
        return True
    if first_unwind:
        return caller_sp < callee_sp
    return caller_sp <= callee_sp


def accept_caller(
    frames: list[StackFrame],
    found: FoundCaller,
    pc: str,
    sp: str,
    instruction: int,
    return_address: int | None = None,
) -> StackFrame | None:
    """The frame of the caller `found`, unless TerminateWalk ends the walk there. Its printed
    address is `return_address`, or the instruction itself when not given."""
    context, trust = found
    callee_sp = last_context(frames).registers[sp]
    first_unwind = frames[-1].trust is FrameTrust.CONTEXT
    if terminate_walk(context.registers[pc], context.registers[sp], callee_sp, first_unwind):
        return None
    if return_address is None:
        return_address = instruction
    return StackFrame(
        instruction=instruction, trust=trust, context=context, return_address=return_address
    )


def last_context(frames: list[StackFrame]) -> CPUContext:
    context = frames[-1].context
    assert context is not None, "the last frame of a walk is always a real frame"
    return context
