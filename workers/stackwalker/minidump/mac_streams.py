"""Mozilla's macOS streams: crash info (0x4D7A0001) and boot-args (0x4D7A0002)
(docs/formats/minidump.md §2.2 and 3.13)."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string

MAX_RECORDS = 20
HEADER_SIZE = 172
MAX_STRING = 8192
STRING_FIELDS = ("module_path", "message", "signature_string", "backtrace", "message2")


@dataclass
class MacCrashInfoRecord:
    version: int
    thread: int | None = None
    dialog_mode: int | None = None
    abort_cause: int | None = None
    strings: dict[str, str] = field(default_factory=dict)


def parse_mac_crash_info(stream: ByteView, file: ByteView) -> list[MacCrashInfoRecord]:
    if stream.size < HEADER_SIZE:
        raise MinidumpFormatError(f"mac crash info stream of {stream.size} bytes")
    _type, count, start_size = stream.unpack("III", 0)
    if count > MAX_RECORDS:
        raise MinidumpFormatError(f"{count} mac crash info records")
    records = []
    for i in range(count):
        size, rva = stream.unpack("II", 12 + 8 * i)
        record = file.sub(rva, size)
        _stream_type, version = record.unpack("QQ", 0)
        entry = MacCrashInfoRecord(version)
        if version >= 4:
            entry.thread, entry.dialog_mode = record.unpack("QQ", 16)
        if version >= 5:
            entry.abort_cause = record.u64(32)
        offset = start_size
        if version >= 4:
            for name in STRING_FIELDS:
                if offset >= record.size:
                    break
                raw = record.cstring(offset, MAX_STRING + 1)
                if raw is None:
                    raise MinidumpFormatError("unterminated mac crash info string")
                entry.strings[name] = raw.decode("utf-8", errors="replace")
                offset += len(raw) + 1
        if records and records[0].version != version:
            raise MinidumpFormatError("mac crash info records of different versions")
        records.append(entry)
    return records


def parse_mac_bootargs(stream: ByteView, file: ByteView) -> str | None:
    _type, rva = stream.unpack("IQ", 0)
    if rva > file.size:
        return None
    return read_minidump_string(file, rva)
