"""ThreadList (3) and ThreadNames (24) (docs/formats/minidump.md §3.1, 3.8). Breakpad ignores
ThreadExList (8), and so does the walker."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump.lists import list_entries
from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string

THREAD_SIZE = 48
THREAD_NAME_SIZE = 12
MAX_THREADS = 4096


@dataclass(frozen=True)
class RawThread:
    thread_id: int
    suspend_count: int
    priority_class: int
    priority: int
    teb: int
    stack_start: int
    stack_size: int
    stack_rva: int
    context_size: int
    context_rva: int


def _thread(entry: ByteView) -> RawThread:
    tid, suspend, pclass, prio, teb, start, size, rva, csize, crva = entry.unpack("IIIIQQIIII", 0)
    return RawThread(tid, suspend, pclass, prio, teb, start, size, rva, csize, crva)


def parse_thread_list(stream: ByteView) -> list[RawThread]:
    return [_thread(e) for e in list_entries(stream, THREAD_SIZE, MAX_THREADS)]


def parse_thread_names(stream: ByteView, file: ByteView) -> dict[int, str]:
    """thread id -> name; unreadable names are skipped, the first name for an id wins."""
    count = stream.u32(0)
    checked_count(count, THREAD_NAME_SIZE, stream.size - 4, MAX_THREADS)
    names: dict[int, str] = {}
    for i in range(count):
        tid, rva = stream.unpack("IQ", 4 + i * THREAD_NAME_SIZE)
        if rva > 0xFFFFFFFF or tid in names:
            continue
        try:
            names[tid] = read_minidump_string(file, rva)
        except MinidumpFormatError:
            continue
    return names
