"""The process's memory map with permissions, as rust-minidump's UnifiedMemoryInfoList reads it:
the MemoryInfoList stream (Windows, docs/formats/minidump.md §3) or else the LinuxMaps stream
(/proc/self/maps). The bit-flip heuristic asks it which addresses were mapped and how."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump import stream_types
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.linux_streams import text
from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError

MEMORY_INFO_SIZE = 48  # MINIDUMP_MEMORY_INFO
MEMORY_INFO_LIST_HEADER = 16
# A hostile count must not drive a huge loop; real dumps have a few thousand regions.
MAX_REGIONS = 1 << 20

# Windows page protections (winnt.h) that allow each kind of access.
_READABLE = 0x02 | 0x04 | 0x20 | 0x40  # READONLY READWRITE EXECUTE_READ EXECUTE_READWRITE
_WRITABLE = 0x04 | 0x08 | 0x40 | 0x80  # READWRITE WRITECOPY EXECUTE_READWRITE/_WRITECOPY
_EXECUTABLE = 0x10 | 0x20 | 0x40 | 0x80  # EXECUTE and its READ/READWRITE/WRITECOPY forms


@dataclass(frozen=True)
class Region:
    """[start, last] inclusive, as rust-minidump's memory_range; permissions as flags."""

    start: int
    last: int
    readable: bool
    writable: bool
    executable: bool

    @property
    def accessible(self) -> bool:
        return self.readable or self.writable or self.executable


class MemoryMap:
    """Regions sorted by address; a region overlapping an earlier one is dropped, as
    rust-minidump's range map does."""

    def __init__(self, regions: Iterable[Region]) -> None:
        kept: list[Region] = []
        for region in sorted(regions, key=lambda r: (r.start, r.last)):
            if kept and region.start <= kept[-1].last:
                continue
            kept.append(region)
        self.regions = kept
        self._starts = [r.start for r in kept]

    def __len__(self) -> int:
        return len(self.regions)

    def region_at(self, address: int) -> Region | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        region = self.regions[index]
        return region if address <= region.last else None


def parse_memory_info_list(stream: ByteView) -> list[Region]:
    header_size, entry_size, count = stream.unpack("IIQ", 0)
    if header_size < MEMORY_INFO_LIST_HEADER or entry_size < MEMORY_INFO_SIZE:
        raise MinidumpFormatError(f"memory info list header {header_size}/{entry_size}")
    if count > MAX_REGIONS or header_size + count * entry_size > stream.size:
        raise MinidumpFormatError(f"memory info list of {count} entries")
    regions = []
    for index in range(count):
        offset = header_size + index * entry_size
        base, _allocation_base = stream.unpack("QQ", offset)
        size = stream.u64(offset + 24)
        protection = stream.u32(offset + 36)
        # An empty or wrapping region has no range in rust-minidump either.
        if size == 0 or base + size > 1 << 64:
            continue
        regions.append(
            Region(
                start=base,
                last=base + size - 1,
                readable=bool(protection & _READABLE),
                writable=bool(protection & _WRITABLE),
                executable=bool(protection & _EXECUTABLE),
            )
        )
    return regions


def parse_linux_maps(maps: str) -> list[Region]:
    """`start-end perms offset dev inode path` lines; unreadable lines are skipped."""
    regions = []
    for line in maps.splitlines()[:MAX_REGIONS]:
        fields = line.split(maxsplit=2)
        if len(fields) < 2:
            continue
        start_text, sep, end_text = fields[0].partition("-")
        try:
            start, end = int(start_text, 16), int(end_text, 16)
        except ValueError:
            continue
        # The end is exclusive in /proc/self/maps.
        if not sep or start >= end or end > 1 << 64:
            continue
        perms = fields[1]
        regions.append(Region(start, end - 1, "r" in perms, "w" in perms, "x" in perms))
    return regions


def memory_map(dump: Minidump) -> MemoryMap | None:
    """The dump's memory map, or None when it has neither stream (or they are unreadable)."""
    try:
        view = dump.stream(stream_types.MEMORY_INFO_LIST)
        if view is not None:
            return MemoryMap(parse_memory_info_list(view))
    except MinidumpFormatError as exc:
        dump.notes.append(f"MemoryInfoList stream unreadable: {exc}")
    try:
        view = dump.stream(stream_types.LINUX_MAPS)
        if view is not None:
            return MemoryMap(parse_linux_maps(text(view)))
    except (MinidumpFormatError, UnicodeDecodeError) as exc:
        dump.notes.append(f"LinuxMaps stream unreadable: {exc}")
    return None
