"""Types shared by the stackwalker's parts (format, symbols, unwind, output).

This module is the contract between them: keep it small and stable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class FrameTrust(enum.Enum):
    """Breakpad's trust levels (docs/formats/breakpad.md §5); values are rust-minidump's JSON
    names."""

    NONE = "none"
    SCAN = "scan"
    CFI_SCAN = "cfi_scan"
    FRAME_POINTER = "frame_pointer"
    CFI = "cfi"
    PREWALKED = "prewalked"
    CONTEXT = "context"
    INLINE = "inline"
    LEAF = "leaf"  # amd64 Windows: caller of the context frame by simulated return


@dataclass
class CPUContext:
    """Register values of one frame. Names are Breakpad's (eip/esp/ebp..., rip/rsp..., r0-r12
    sp lr pc, x0-x28 fp lr sp pc). `valid` lists the registers known in this frame; the context
    frame has all of them valid."""

    cpu: str  # "x86" | "amd64" | "arm" | "arm64"
    registers: dict[str, int]
    valid: set[str] = field(default_factory=set)

    def get(self, name: str) -> int | None:
        return self.registers.get(name) if name in self.valid else None


class Memory(Protocol):
    """The one memory region a thread's walker may read (docs/formats/breakpad.md §3.1, item 4)."""

    base: int
    size: int

    def read(self, address: int, size: int) -> bytes | None: ...
    def read_u32(self, address: int) -> int | None: ...
    def read_u64(self, address: int) -> int | None: ...


@dataclass
class CodeModule:
    """A loaded or unloaded module as Breakpad identifies it (docs/formats/minidump.md §5)."""

    base_address: int
    size: int
    code_file: str
    code_identifier: str
    debug_file: str
    debug_identifier: str  # "" if none; symbol path uses it as is
    version: str = ""
    is_unloaded: bool = False

    @property
    def end_address(self) -> int:
        return self.base_address + self.size


class ModuleLookup(Protocol):
    def module_for_address(self, address: int) -> CodeModule | None:
        """Loaded modules first, then unloaded ones (docs/formats/breakpad.md §3.5)."""
        ...


@dataclass
class InlineInfo:
    """One INLINE level containing the address, innermost first (docs/formats/breakpad.md §7)."""

    function_name: str  # INLINE_ORIGIN name or "<name omitted>"
    function_base: int  # module-relative start of the first matching range
    call_site_file: str | None  # None: keep the real frame's file (old syntax / unknown id)
    call_site_line: int


@dataclass
class SymbolLookup:
    """Result of LookupAddress for a module-relative address (docs/formats/breakpad.md §1.6).
    All addresses are module-relative."""

    function_name: str
    function_base: int
    is_public: bool = False
    param_size: int = 0
    source_file: str | None = None  # None: no line record or its file id is unknown
    source_line: int | None = None  # set when a line record was found
    source_line_base: int | None = None
    inlines: list[InlineInfo] = field(default_factory=list)


@dataclass
class WindowsFrameInfo:
    """A STACK WIN record (or a FUNC's parameter-size-only record, `kind == "param_only"`)."""

    kind: str  # "frame_data" (type 4) | "fpo" (type 0) | "param_only"
    prolog_size: int = 0
    epilog_size: int = 0
    parameter_size: int = 0
    saved_register_size: int = 0
    local_size: int = 0
    max_stack_size: int = 0
    allocates_base_pointer: bool = False
    program_string: str | None = None


class SymbolIndexProtocol(Protocol):
    """What the unwinder and symbolizer need from a module's parsed symbols."""

    def lookup(self, rel: int) -> SymbolLookup | None: ...

    def find_windows_frame_info(self, rel: int) -> WindowsFrameInfo | None:
        """docs/formats/breakpad.md §1.7."""
        ...

    def find_cfi_rules(self, rel: int) -> dict[str, str] | None:
        """CFI rules in effect at rel (INIT + deltas up to rel), register -> postfix rule text,
        including '.cfa' and '.ra' (docs/formats/breakpad.md §6.4). None if no INIT covers rel."""
        ...


class SymbolProvider(Protocol):
    """Gives the walker a module's symbols (a local symbol path, or the shared cache)."""

    def get_symbols(self, module: CodeModule) -> SymbolIndexProtocol | None:
        """None when there are no symbols; raises SymbolsUnavailable when there may be some
        that cannot be used for this dump (the walk goes on without them, with a note)."""
        ...


class SymbolsUnavailable(Exception):
    """A provider's "not for this dump": symbols still being indexed, or refused. The message
    says why and becomes a note of the walk."""


@runtime_checkable
class SymbolDiscarder(Protocol):
    """A provider the walker can tell that a module's symbols turned out to be damaged, so
    everything that reports on the dump (not just the walk) treats them as not loaded."""

    def discard_symbols(self, module: CodeModule, reason: str) -> None: ...


@dataclass
class StackFrame:
    instruction: int  # address used for module/symbol/CFI lookup (docs/formats/breakpad.md §3.4)
    trust: FrameTrust
    context: CPUContext | None  # None for inline frames
    module: CodeModule | None = None
    return_address: int | None = None  # printed address; defaults to instruction
    function_name: str | None = None
    function_base: int | None = None  # absolute
    source_file: str | None = None
    source_line: int | None = None
    source_line_base: int | None = None  # absolute
    is_inline: bool = False

    @property
    def printed_address(self) -> int:
        return self.instruction if self.return_address is None else self.return_address


@dataclass
class CallStack:
    thread_id: int
    frames: list[StackFrame] = field(default_factory=list)
    thread_name: str | None = None
    # why the walk stopped early, if it did ("frame limit", "scan limit", ...)
    truncated_reason: str | None = None
