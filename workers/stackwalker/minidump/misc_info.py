"""MiscInfo stream (15), versions 1 to 5 (docs/formats/minidump.md §3.6)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.strings import fixed_utf16

MISC_SIZES = (24, 44, 232, 832, 1364)
FLAG_PROCESS_ID = 0x001
FLAG_PROCESS_TIMES = 0x002
FLAG_PROCESSOR_POWER_INFO = 0x004
FLAG_PROCESS_INTEGRITY = 0x010
FLAG_PROCESS_EXECUTE_FLAGS = 0x020
FLAG_TIMEZONE = 0x040
FLAG_PROTECTED_PROCESS = 0x080
FLAG_BUILDSTRING = 0x100
FLAG_PROCESS_COOKIE = 0x200


@dataclass
class MiscInfo:
    size_of_info: int
    flags1: int
    process_id: int | None = None
    process_create_time: int | None = None
    process_user_time: int | None = None
    process_kernel_time: int | None = None
    processor_max_mhz: int | None = None
    processor_current_mhz: int | None = None
    process_integrity_level: int | None = None
    process_execute_flags: int | None = None
    protected_process: int | None = None
    time_zone_id: int | None = None
    time_zone_bias: int | None = None
    time_zone_standard_name: str | None = None
    time_zone_daylight_name: str | None = None
    build_string: str | None = None
    dbg_bld_str: str | None = None
    xstate_context_size: int | None = None
    xstate_enabled_features: int | None = None
    process_cookie: int | None = None


def parse_misc_info(stream: ByteView) -> MiscInfo:
    if stream.size < MISC_SIZES[0]:
        raise MinidumpFormatError(f"MiscInfo stream of {stream.size} bytes")
    size_of_info, flags = stream.unpack("II", 0)
    if stream.size not in MISC_SIZES and stream.size < MISC_SIZES[-1]:
        raise MinidumpFormatError(f"MiscInfo stream of {stream.size} bytes")
    if size_of_info != stream.size:
        raise MinidumpFormatError(f"MiscInfo size_of_info {size_of_info} != {stream.size}")
    info = MiscInfo(size_of_info, flags)
    size = stream.size
    if flags & FLAG_PROCESS_ID:
        info.process_id = stream.u32(8)
    if flags & FLAG_PROCESS_TIMES:
        info.process_create_time, info.process_user_time, info.process_kernel_time = stream.unpack(
            "III", 12
        )
    if size >= 44 and flags & FLAG_PROCESSOR_POWER_INFO:
        info.processor_max_mhz, info.processor_current_mhz = stream.unpack("II", 24)
    if size >= 232:
        if flags & FLAG_PROCESS_INTEGRITY:
            info.process_integrity_level = stream.u32(44)
        if flags & FLAG_PROCESS_EXECUTE_FLAGS:
            info.process_execute_flags = stream.u32(48)
        if flags & FLAG_PROTECTED_PROCESS:
            info.protected_process = stream.u32(52)
        if flags & FLAG_TIMEZONE:
            info.time_zone_id = stream.u32(56)
            info.time_zone_bias = stream.i32(60)
            le = stream.little_endian
            info.time_zone_standard_name = fixed_utf16(stream.bytes_at(64, 64), le)
            info.time_zone_daylight_name = fixed_utf16(stream.bytes_at(148, 64), le)
    if size >= 832 and flags & FLAG_BUILDSTRING:
        info.build_string = fixed_utf16(stream.bytes_at(232, 520), stream.little_endian)
        info.dbg_bld_str = fixed_utf16(stream.bytes_at(752, 80), stream.little_endian)
    if size >= 1364:
        xsize, context_size, enabled = stream.unpack("IIQ", 832)
        if xsize:
            info.xstate_context_size = context_size
            info.xstate_enabled_features = enabled
        if flags & FLAG_PROCESS_COOKIE:
            info.process_cookie = stream.u32(1360)
    return info
