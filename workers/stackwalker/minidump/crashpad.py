"""CrashpadInfo stream (0x43500001) and its annotations (docs/formats/minidump.md §3.12)."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)
from procsupervisor.workers.stackwalker.minidump.strings import read_byte_array, read_utf8_string

MAX_ENTRIES = 4096
ANNOTATION_TYPE_STRING = 1


@dataclass
class ModuleCrashpadInfo:
    module_index: int
    list_annotations: list[str] = field(default_factory=list)
    simple_annotations: dict[str, str] = field(default_factory=dict)
    annotation_objects: dict[str, str] = field(default_factory=dict)


@dataclass
class CrashpadInfo:
    version: int
    report_id: str
    client_id: str
    simple_annotations: dict[str, str] = field(default_factory=dict)
    module_list: list[ModuleCrashpadInfo] = field(default_factory=list)


def _guid_text(raw: bytes) -> str:
    return raw.hex()


def _entries(file: ByteView, size: int, rva: int, entry_size: int) -> list[ByteView]:
    """One view per entry of a `u32 count` + entries list; an absent (size 0) list is empty."""
    if size == 0:
        return []
    view = file.sub(rva, size)
    count = checked_count(view.u32(0), entry_size, view.size - 4, MAX_ENTRIES)
    return [view.sub(4 + entry_size * i, entry_size) for i in range(count)]


def _dictionary(file: ByteView, size: int, rva: int) -> dict[str, str]:
    result = {}
    for entry in _entries(file, size, rva, 8):
        key_rva, value_rva = entry.unpack("II", 0)
        result[read_utf8_string(file, key_rva)] = read_utf8_string(file, value_rva)
    return result


def _string_list(file: ByteView, size: int, rva: int) -> list[str]:
    return [read_utf8_string(file, entry.u32(0)) for entry in _entries(file, size, rva, 4)]


def _annotation_objects(file: ByteView, size: int, rva: int) -> dict[str, str]:
    result = {}
    for entry in _entries(file, size, rva, 12):
        name_rva, kind, _reserved, value_rva = entry.unpack("IHHI", 0)
        name = read_utf8_string(file, name_rva)
        value = read_byte_array(file, value_rva)
        if kind == ANNOTATION_TYPE_STRING:
            result[name] = value.decode("utf-8", errors="replace")
        else:
            result[name] = value.hex()
    return result


def parse_crashpad_info(stream: ByteView, file: ByteView) -> CrashpadInfo:
    if stream.size < 52:
        raise MinidumpFormatError(f"CrashpadInfo stream of {stream.size} bytes")
    version = stream.u32(0)
    if version == 0:
        raise MinidumpFormatError("CrashpadInfo version 0")
    info = CrashpadInfo(
        version, _guid_text(stream.bytes_at(4, 16)), _guid_text(stream.bytes_at(20, 16))
    )
    ann_size, ann_rva, list_size, list_rva = stream.unpack("IIII", 36)
    info.simple_annotations = _dictionary(file, ann_size, ann_rva)
    for link in _entries(file, list_size, list_rva, 12):
        index, loc_size, loc_rva = link.unpack("III", 0)
        module = file.sub(loc_rva, loc_size)
        entry = ModuleCrashpadInfo(index)
        if module.size >= 20:
            ls, lr, ss, sr = module.unpack("IIII", 4)
            entry.list_annotations = _string_list(file, ls, lr)
            entry.simple_annotations = _dictionary(file, ss, sr)
        if module.size >= 28:
            os_, or_ = module.unpack("II", 20)
            entry.annotation_objects = _annotation_objects(file, os_, or_)
        info.module_list.append(entry)
    return info
