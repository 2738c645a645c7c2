"""The `u32 count` + fixed-size entries shape of ThreadList, ModuleList and MemoryList, with the
old Mac writer's 4 padding bytes after the count (docs/formats/minidump.md §4)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)


def list_entries(stream: ByteView, entry_size: int, limit: int) -> list[ByteView]:
    """One view per entry; the count must match the stream size exactly (with or without
    padding), as Breakpad and rust-minidump require."""
    count = stream.u32(0)
    checked_count(count, entry_size, stream.size, limit)
    body = count * entry_size
    if stream.size == 4 + body:
        first = 4
    elif stream.size == 8 + body:
        first = 8
    else:
        raise MinidumpFormatError(
            f"list of {count} x {entry_size}-byte entries does not match stream size {stream.size}"
        )
    return [stream.sub(first + i * entry_size, entry_size) for i in range(count)]
