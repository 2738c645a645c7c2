"""Breakpad's module range map (docs/formats/breakpad.md §3.5): which module holds an address, and
which modules the `Module|` lines list."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from procsupervisor.workers.stackwalker.model import CodeModule

_ADDRESS_LIMIT = 1 << 64


class ModuleListUnreadable(ValueError):
    """Breakpad would drop the whole module list (overlap, zero size, overflow)."""


@dataclass
class _Range:
    start: int
    end: int  # exclusive; may be below module.end_address when truncated (Linux)
    module: CodeModule


def _is_duplicate(a: CodeModule, b: CodeModule) -> bool:
    return (
        a.base_address == b.base_address
        and a.size == b.size
        and a.code_file == b.code_file
        and a.code_identifier == b.code_identifier
    )


class _RangeMap:
    def __init__(self) -> None:
        self.ranges: list[_Range] = []
        self._starts: list[int] = []

    def find(self, address: int) -> _Range | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.ranges[i].end:
            return self.ranges[i]
        return None

    def overlapping(self, start: int, end: int) -> list[_Range]:
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        found = []
        while i < len(self.ranges) and self.ranges[i].start < end:
            if self.ranges[i].end > start:
                found.append(self.ranges[i])
            i += 1
        return found

    def insert(self, entry: _Range) -> None:
        i = bisect.bisect_left(self._starts, entry.start)
        self.ranges.insert(i, entry)
        self._starts.insert(i, entry.start)


class ModuleMap:
    """Loaded modules (address-sorted, Breakpad's overlap rules) and unloaded modules.

    Iterating yields the loaded modules in ascending base order, which is also the order of
    the `Module|` lines.
    """

    def __init__(
        self,
        loaded: list[CodeModule],
        unloaded: list[CodeModule],
        *,
        truncate_lower: bool,
    ) -> None:
        self._loaded = _RangeMap()
        self.main_module: CodeModule | None = None
        for module in loaded:
            self._store(module, truncate_lower)
        if loaded:
            main = self._loaded.find(loaded[0].base_address)
            self.main_module = main.module if main else None
        self._unloaded = _RangeMap()
        for module in unloaded:
            end = module.base_address + module.size
            if module.size == 0 or end > _ADDRESS_LIMIT:
                continue
            if not self._unloaded.overlapping(module.base_address, end):
                self._unloaded.insert(_Range(module.base_address, end, module))

    @classmethod
    def empty(cls) -> ModuleMap:
        return cls([], [], truncate_lower=False)

    def _store(self, module: CodeModule, truncate_lower: bool) -> None:
        start = module.base_address
        end = start + module.size
        if module.size == 0 or end > _ADDRESS_LIMIT or start == _ADDRESS_LIMIT - 1:
            raise ModuleListUnreadable(f"module {module.code_file!r} has a bad range")
        clashes = self._loaded.overlapping(start, end)
        if not clashes:
            self._loaded.insert(_Range(start, end, module))
            return
        if any(c.start == start and _is_duplicate(c.module, module) for c in clashes):
            return
        if not truncate_lower:
            raise ModuleListUnreadable(f"module {module.code_file!r} overlaps another")
        for clash in clashes:
            if clash.start == start:
                raise ModuleListUnreadable(f"two modules at {start:#x}")
            if clash.start < start:
                clash.end = start  # the lower module ends just below the new one
            else:
                end = min(end, clash.start)
        self._loaded.insert(_Range(start, end, module))

    def module_for_address(self, address: int) -> CodeModule | None:
        found = self._loaded.find(address) or self._unloaded.find(address)
        return found.module if found else None

    def __iter__(self) -> Iterator[CodeModule]:
        return (r.module for r in self._loaded.ranges)

    def __len__(self) -> int:
        return len(self._loaded.ranges)

    @property
    def unloaded(self) -> list[CodeModule]:
        return [r.module for r in self._unloaded.ranges]
