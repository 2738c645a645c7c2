"""MINIDUMP_HEADER and the stream directory (docs/formats/minidump.md §0 and 1)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump import stream_types
from procsupervisor.workers.stackwalker.minidump.reader import (
    Buffer,
    ByteView,
    MinidumpFormatError,
)

SIGNATURE = 0x504D444D
VERSION_LOW = 0xA793
HEADER_SIZE = 32
DIRECTORY_ENTRY_SIZE = 12
MAX_STREAMS = 128


class HeaderError(MinidumpFormatError):
    """The file is not a minidump: too short, wrong signature or version, bad directory."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Header:
    version: int
    stream_count: int
    stream_directory_rva: int
    checksum: int
    time_date_stamp: int
    flags: int


@dataclass(frozen=True)
class DirectoryEntry:
    stream_type: int
    data_size: int
    rva: int


def open_file(data: Buffer) -> ByteView:
    """A view of the whole file in the byte order its signature says."""
    view = ByteView(data)
    if view.size < 4:
        raise HeaderError("file too short for a minidump header", "ERROR_NO_MINIDUMP_HEADER")
    le = view.u32(0)
    if le == SIGNATURE:
        return view
    if int.from_bytes(le.to_bytes(4, "little"), "big") == SIGNATURE:
        return ByteView(data, little_endian=False)
    raise HeaderError(f"bad signature {le:#010x}", "ERROR_MINIDUMP_HEADER_MISMATCH")


def read_header(file: ByteView) -> Header:
    if file.size < HEADER_SIZE:
        raise HeaderError("file too short for a minidump header", "ERROR_NO_MINIDUMP_HEADER")
    signature, version, count, rva, checksum, stamp, flags = file.unpack("IIIIIIQ", 0)
    if signature != SIGNATURE:
        raise HeaderError(f"bad signature {signature:#010x}", "ERROR_MINIDUMP_HEADER_MISMATCH")
    if version & 0xFFFF != VERSION_LOW:
        raise HeaderError(f"bad version {version:#010x}", "ERROR_MINIDUMP_HEADER_MISMATCH")
    return Header(version, count, rva, checksum, stamp, flags)


def read_directory(file: ByteView, header: Header) -> list[DirectoryEntry]:
    if header.stream_count > MAX_STREAMS:
        raise HeaderError(
            f"{header.stream_count} streams (limit {MAX_STREAMS})", "ERROR_NO_MINIDUMP_HEADER"
        )
    try:
        table = file.sub(header.stream_directory_rva, header.stream_count * DIRECTORY_ENTRY_SIZE)
    except MinidumpFormatError as exc:
        raise HeaderError(f"stream directory unreadable: {exc}", "ERROR_NO_MINIDUMP_HEADER")
    return [
        DirectoryEntry(*table.unpack("III", i * DIRECTORY_ENTRY_SIZE))
        for i in range(header.stream_count)
    ]


def index_streams(entries: list[DirectoryEntry]) -> dict[int, DirectoryEntry]:
    """stream type -> entry; Breakpad's duplicate rule, last entry wins otherwise."""
    by_type: dict[int, DirectoryEntry] = {}
    for entry in entries:
        if entry.stream_type == stream_types.UNUSED:
            continue
        if entry.stream_type in stream_types.UNIQUE_STREAMS and entry.stream_type in by_type:
            raise HeaderError(
                f"stream type {entry.stream_type:#x} appears twice", "ERROR_NO_MINIDUMP_HEADER"
            )
        by_type[entry.stream_type] = entry
    return by_type
