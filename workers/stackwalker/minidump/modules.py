"""ModuleList (4), UnloadedModuleList (14) and CodeView records, giving each module the
identity Breakpad prints (docs/formats/minidump.md §3.2, 3.7 and 5)."""

from __future__ import annotations

import struct

from procsupervisor.workers.stackwalker.minidump.lists import list_entries
from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string
from procsupervisor.workers.stackwalker.minidump.system_info import (
    PLATFORM_ANDROID,
    PLATFORM_FUCHSIA,
    PLATFORM_IOS,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_NACL,
    PLATFORM_PS3,
    PLATFORM_SOLARIS,
    PLATFORM_WIN32_NT,
    PLATFORM_WIN32_WINDOWS,
)
from procsupervisor.workers.stackwalker.model import CodeModule

MODULE_SIZE = 108
UNLOADED_MODULE_SIZE = 24
MAX_MODULES = 2048
MAX_RECORD_SIZE = 32768

CV_PDB70 = 0x53445352
CV_PDB20 = 0x3031424E
CV_ELF = 0x4270454C
VS_FFI_SIGNATURE = 0xFEEF04BD
VS_FFI_STRUCT_VERSION = 0x00010000
IMAGE_DEBUG_MISC_EXENAME = 1

_ELF_CODE_ID_PLATFORMS = {PLATFORM_LINUX, PLATFORM_ANDROID, PLATFORM_FUCHSIA}
_ID_CODE_ID_PLATFORMS = {PLATFORM_MAC, PLATFORM_IOS, PLATFORM_SOLARIS, PLATFORM_NACL, PLATFORM_PS3}


def guid_debug_id(guid: bytes, age: int) -> str:
    d1, d2, d3 = struct.unpack("<IHH", guid[:8])
    return f"{d1:08X}{d2:04X}{d3:04X}{guid[8:16].hex().upper()}{age:x}"


class CodeView:
    """What a module's CodeView record says about its debug file."""

    __slots__ = ("signature", "debug_file", "debug_id", "build_id")

    def __init__(
        self, signature: int, debug_file: str = "", debug_id: str = "", build_id: bytes = b""
    ) -> None:
        self.signature = signature
        self.debug_file = debug_file
        self.debug_id = debug_id
        self.build_id = build_id


def parse_codeview(record: ByteView) -> CodeView:
    """Raises MinidumpFormatError if a known record is too short or not NUL-terminated."""
    signature = record.u32(0)
    if signature == CV_PDB70:
        if record.size < 25 or record.bytes_at(record.size - 1, 1) != b"\0":
            raise MinidumpFormatError("truncated PDB70 CodeView record")
        guid = record.bytes_at(4, 16)
        if not record.little_endian:
            guid = guid[3::-1] + guid[5:3:-1] + guid[7:5:-1] + guid[8:]
        age = record.u32(20)
        name = record.cstring(24) or b""
        return CodeView(signature, _decode_name(name), guid_debug_id(guid, age))
    if signature == CV_PDB20:
        if record.size < 17 or record.bytes_at(record.size - 1, 1) != b"\0":
            raise MinidumpFormatError("truncated PDB20 CodeView record")
        stamp, age = record.unpack("II", 8)
        name = record.cstring(16) or b""
        return CodeView(signature, _decode_name(name), f"{stamp:08X}{age:x}")
    if signature == CV_ELF:
        build_id = record.bytes_at(4, record.size - 4)
        guid = (build_id[:16] + b"\0" * 16)[:16]
        return CodeView(signature, "", guid_debug_id(guid, 0), build_id)
    return CodeView(signature)


def _decode_name(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _misc_debug_file(record: ByteView) -> str:
    data_type, _length, unicode = record.unpack("IIB", 0)
    if data_type != IMAGE_DEBUG_MISC_EXENAME:
        return ""
    data = record.bytes_at(12, record.size - 12)
    if unicode:
        text = data[: len(data) - len(data) % 2].decode(
            "utf-16-le" if record.little_endian else "utf-16-be", errors="replace"
        )
    else:
        text = data.decode("latin-1")
    return text.split("\0", 1)[0]


def _record(file: ByteView, size: int, rva: int) -> ByteView | None:
    if size == 0 or size > MAX_RECORD_SIZE:
        return None
    return file.sub(rva, size)


def _version(entry: ByteView) -> str:
    signature, struct_version, hi, lo = entry.unpack("IIII", 24)
    if signature != VS_FFI_SIGNATURE or not struct_version & VS_FFI_STRUCT_VERSION:
        return ""
    return f"{hi >> 16}.{hi & 0xFFFF}.{lo >> 16}.{lo & 0xFFFF}"


def _code_id(platform_id: int, stamp: int, size: int, cv: CodeView | None) -> str:
    if platform_id in (PLATFORM_WIN32_NT, PLATFORM_WIN32_WINDOWS):
        return f"{stamp:08X}{size:x}"
    if platform_id in _ELF_CODE_ID_PLATFORMS:
        if cv is not None and cv.signature == CV_ELF:
            return cv.build_id.hex()
        return "id"
    if platform_id in _ID_CODE_ID_PLATFORMS:
        return "id"
    return ""


def parse_module(entry: ByteView, file: ByteView, platform_id: int) -> CodeModule:
    base, size, _checksum, stamp, name_rva = entry.unpack("QIIII", 0)
    code_file = read_minidump_string(file, name_rva)  # unreadable name: the list is rejected
    cv_size, cv_rva, misc_size, misc_rva = entry.unpack("IIII", 76)
    cv: CodeView | None = None
    cv_broken = False
    try:
        record = _record(file, cv_size, cv_rva)
        if record is not None:
            cv = parse_codeview(record)
    except MinidumpFormatError:
        cv_broken = True
    debug_file = ""
    debug_id = ""
    if cv is not None:
        debug_file = code_file if cv.signature == CV_ELF else cv.debug_file
        debug_id = cv.debug_id
    if not debug_file and not cv_broken:
        try:
            misc = _record(file, misc_size, misc_rva)
            if misc is not None:
                debug_file = _misc_debug_file(misc)
        except MinidumpFormatError:
            pass
    return CodeModule(
        base_address=base,
        size=size,
        code_file=code_file,
        code_identifier="" if cv_broken else _code_id(platform_id, stamp, size, cv),
        debug_file=debug_file,
        debug_identifier=debug_id,
        version=_version(entry),
    )


def parse_module_list(stream: ByteView, file: ByteView, platform_id: int) -> list[CodeModule]:
    return [
        parse_module(e, file, platform_id) for e in list_entries(stream, MODULE_SIZE, MAX_MODULES)
    ]


def parse_unloaded_module_list(stream: ByteView, file: ByteView) -> list[CodeModule]:
    header_size, entry_size, count = stream.unpack("III", 0)
    if entry_size < UNLOADED_MODULE_SIZE or header_size < 12:
        raise MinidumpFormatError("bad UnloadedModuleList header")
    checked_count(count, entry_size, stream.size, MAX_MODULES)
    if stream.size != header_size + entry_size * count:
        raise MinidumpFormatError("UnloadedModuleList size mismatch")
    modules = []
    for i in range(count):
        base, size, _checksum, _stamp, name_rva = stream.unpack(
            "QIIII", header_size + i * entry_size
        )
        try:
            name = read_minidump_string(file, name_rva)
        except MinidumpFormatError:
            continue
        modules.append(
            CodeModule(
                base_address=base,
                size=size,
                code_file=name,
                code_identifier="",
                debug_file="",
                debug_identifier="",
                is_unloaded=True,
            )
        )
    return modules
