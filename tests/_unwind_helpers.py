"""Small stand-ins for the stackwalker's memory, modules and symbols, for unwinder tests."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    CPUContext,
    InlineInfo,
    SymbolLookup,
    WindowsFrameInfo,
)
from procsupervisor.workers.stackwalker.symbols.cfi_rules import apply_rule_set

# Each CPU's general registers, as the minidump reader gives them.
REGISTER_NAMES = {
    "x86": ["eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx"],
    "amd64": [
        "rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    ],
    "arm": [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"],
    "arm64": [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"],
}  # fmt: skip


def cpu_context(cpu: str, **values: int) -> CPUContext:
    """A `cpu` context with every general register valid and zero unless given."""
    names = REGISTER_NAMES[cpu]
    return CPUContext(cpu, dict.fromkeys(names, 0) | values, set(names))


class StackMemory:
    """One contiguous region, built word by word."""

    def __init__(self, base: int, size: int, word_size: int) -> None:
        self.base = base
        self.size = size
        self.word_size = word_size
        self.data = bytearray(size)

    def put(self, address: int, *words: int) -> StackMemory:
        fmt = "<I" if self.word_size == 4 else "<Q"
        for index, word in enumerate(words):
            offset = address - self.base + index * self.word_size
            struct.pack_into(fmt, self.data, offset, word & ((1 << (8 * self.word_size)) - 1))
        return self

    def read(self, address: int, size: int) -> bytes | None:
        if address < self.base or address + size > self.base + self.size or size < 0:
            return None
        offset = address - self.base
        return bytes(self.data[offset : offset + size])

    def read_u32(self, address: int) -> int | None:
        raw = self.read(address, 4)
        return None if raw is None else struct.unpack("<I", raw)[0]

    def read_u64(self, address: int) -> int | None:
        raw = self.read(address, 8)
        return None if raw is None else struct.unpack("<Q", raw)[0]


def module(name: str, base: int, size: int, *, unloaded: bool = False) -> CodeModule:
    return CodeModule(
        base_address=base,
        size=size,
        code_file=f"/lib/{name}",
        code_identifier="ID",
        debug_file="" if unloaded else name,
        debug_identifier="" if unloaded else "0000",
        is_unloaded=unloaded,
    )


class Modules:
    def __init__(self, *modules: CodeModule) -> None:
        self.modules = list(modules)

    def module_for_address(self, address: int) -> CodeModule | None:
        for wanted_unloaded in (False, True):
            for candidate in self.modules:
                if candidate.is_unloaded != wanted_unloaded:
                    continue
                if candidate.base_address <= address < candidate.end_address:
                    return candidate
        return None

    def __iter__(self) -> Iterator[CodeModule]:
        return iter(self.modules)


@dataclass
class Func:
    address: int
    size: int
    name: str
    param_size: int = 0
    # (address, size, line, file or None)
    lines: list[tuple[int, int, int, str | None]] = field(default_factory=list)
    # innermost-first order is computed by containment: (name, call_file, call_line, ranges)
    inlines: list[tuple[str, str | None, int, list[tuple[int, int]]]] = field(default_factory=list)


@dataclass
class FakeSymbols:
    """A module's symbols given as Python data (SymbolIndexProtocol)."""

    funcs: list[Func] = field(default_factory=list)
    publics: list[tuple[int, str]] = field(default_factory=list)
    stack_win: list[tuple[int, int, WindowsFrameInfo]] = field(default_factory=list)
    cfi_init: list[tuple[int, int, str]] = field(default_factory=list)
    cfi_deltas: dict[int, str] = field(default_factory=dict)

    def _func_at(self, rel: int) -> Func | None:
        return next((f for f in self.funcs if f.address <= rel < f.address + f.size), None)

    def lookup(self, rel: int) -> SymbolLookup | None:
        func = self._func_at(rel)
        if func is not None:
            result = SymbolLookup(func.name, func.address, param_size=func.param_size)
            for address, size, line, file in func.lines:
                if address <= rel < address + size:
                    result.source_file = file
                    result.source_line = line
                    result.source_line_base = address
            containing = [
                (inline, next(r for r in inline[3] if r[0] <= rel < r[0] + r[1]))
                for inline in func.inlines
                if any(r[0] <= rel < r[0] + r[1] for r in inline[3])
            ]
            containing.sort(key=lambda item: item[1][1])  # smallest range = innermost
            result.inlines = [
                InlineInfo(name, found[0], call_file, call_line)
                for (name, call_file, call_line, _), found in containing
            ]
            return result
        # Breakpad's rule: a PUBLIC counts only past the start of the nearest FUNC below.
        nearest = max(
            (f for f in self.funcs if f.address + f.size <= rel),
            key=lambda f: f.address + f.size,
            default=None,
        )
        below = [p for p in self.publics if p[0] <= rel]
        if not below:
            return None
        public = max(below)
        if nearest is not None and public[0] <= nearest.address:
            return None
        return SymbolLookup(public[1], public[0], is_public=True)

    def find_windows_frame_info(self, rel: int) -> WindowsFrameInfo | None:
        for kind in ("frame_data", "fpo"):
            matches = [
                (size, info)
                for address, size, info in self.stack_win
                if info.kind == kind and address <= rel < address + size
            ]
            if matches:
                return min(matches, key=lambda item: item[0])[1]
        func = self._func_at(rel)
        if func is not None:
            return WindowsFrameInfo(kind="param_only", parameter_size=func.param_size)
        return None

    def find_cfi_rules(self, rel: int) -> dict[str, str] | None:
        for address, size, text in self.cfi_init:
            if address <= rel < address + size:
                rules: dict[str, str] = {}
                if not apply_rule_set(text, rules):
                    return None
                for delta_address in sorted(self.cfi_deltas):
                    if address <= delta_address <= rel:
                        apply_rule_set(self.cfi_deltas[delta_address], rules)
                return rules
        return None


class Symbols:
    """SymbolProvider: symbols by module code_file; a missing entry means "no symbol file"."""

    def __init__(self, by_name: dict[str, FakeSymbols]) -> None:
        self.by_name = by_name
        self.requests: list[str] = []

    def get_symbols(self, module: CodeModule) -> FakeSymbols | None:
        self.requests.append(module.code_file)
        return self.by_name.get(module.code_file.rsplit("/", 1)[-1])


def fpo(**fields: int | str | bool | None) -> WindowsFrameInfo:
    return WindowsFrameInfo(kind="fpo", **fields)  # type: ignore[arg-type]


def frame_data(**fields: int | str | bool | None) -> WindowsFrameInfo:
    return WindowsFrameInfo(kind="frame_data", **fields)  # type: ignore[arg-type]
