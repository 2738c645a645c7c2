"""MemoryList (5), Memory64List (9) and the readable region the walker gets
(docs/formats/minidump.md §3.3, docs/formats/breakpad.md §3.1 item 4)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump.lists import list_entries
from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)

MEMORY_DESCRIPTOR_SIZE = 16
MAX_REGIONS = 4096
MAX_REGION_SIZE = 64 * 1024 * 1024
MAX_MEMORY64_REGIONS = 1 << 20


class MemoryRegion:
    """A contiguous range of the crashed process's memory (implements model.Memory)."""

    __slots__ = ("base", "size", "_view")

    def __init__(self, base: int, view: ByteView) -> None:
        self.base = base
        self.size = view.size
        self._view = view

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int, size: int = 1) -> bool:
        return self.base <= address and address + size <= self.base + self.size

    def read(self, address: int, size: int) -> bytes | None:
        if size < 0 or not self.contains(address, size):
            return None
        return self._view.bytes_at(address - self.base, size)

    def read_u32(self, address: int) -> int | None:
        if not self.contains(address, 4):
            return None
        return self._view.u32(address - self.base)

    def read_u64(self, address: int) -> int | None:
        if not self.contains(address, 8):
            return None
        return self._view.u64(address - self.base)


@dataclass(frozen=True)
class MemoryDescriptor:
    start: int
    size: int
    rva: int


def parse_memory_list(stream: ByteView) -> list[MemoryDescriptor]:
    descriptors = []
    for entry in list_entries(stream, MEMORY_DESCRIPTOR_SIZE, MAX_REGIONS):
        start, size, rva = entry.unpack("QII", 0)
        if size > MAX_REGION_SIZE:
            raise MinidumpFormatError(f"memory region of {size} bytes")
        descriptors.append(MemoryDescriptor(start, size, rva))
    return descriptors


def parse_memory64_list(stream: ByteView) -> list[MemoryDescriptor]:
    count, base_rva = stream.unpack("QQ", 0)
    checked_count(count, MEMORY_DESCRIPTOR_SIZE, stream.size - 16, MAX_MEMORY64_REGIONS)
    if stream.size != 16 + count * MEMORY_DESCRIPTOR_SIZE:
        raise MinidumpFormatError("Memory64List size mismatch")
    descriptors = []
    rva = base_rva
    for i in range(count):
        start, size = stream.unpack("QQ", 16 + i * MEMORY_DESCRIPTOR_SIZE)
        descriptors.append(MemoryDescriptor(start, size, rva))
        rva += size
    return descriptors


class MemoryIndex:
    """Regions sorted by address; regions whose bytes lie outside the file are dropped."""

    def __init__(self, file: ByteView, descriptors: list[MemoryDescriptor]) -> None:
        regions = []
        for d in descriptors:
            if d.size == 0 or d.start + d.size > 1 << 64:
                continue
            try:
                regions.append(MemoryRegion(d.start, file.sub(d.rva, d.size)))
            except MinidumpFormatError:
                continue
        regions.sort(key=lambda r: r.base)
        self.regions = regions
        self._bases = [r.base for r in regions]

    def region_for(self, address: int) -> MemoryRegion | None:
        i = bisect.bisect_right(self._bases, address) - 1
        # Overlapping regions are possible in hostile files: look back a little.
        for j in range(i, max(-1, i - 8), -1):
            if self.regions[j].contains(address):
                return self.regions[j]
        return None
