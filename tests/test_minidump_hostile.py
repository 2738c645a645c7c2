"""Hostile shapes built on purpose: huge counts, out-of-file RVAs, overlaps, cyclic stacks."""

from __future__ import annotations

import struct

import pytest

from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_X86,
    PLATFORM_LINUX,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
    x86_context,
)
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.stream_types import (
    MISC_INFO,
    MODULE_LIST,
    THREAD_LIST,
)
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string


def frame_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1].isdigit()]


def test_huge_thread_count_is_rejected_without_allocating() -> None:
    synth = SynthMinidump()
    synth.add_raw_stream(THREAD_LIST, struct.pack("<I", 0xFFFFFFFF) + bytes(48))
    result = walk_minidump(synth.build(), None)
    assert result.status == "ERROR_NO_THREAD_LIST"
    assert any("ThreadList" in note for note in result.notes)


def test_stream_outside_the_file() -> None:
    synth = SynthMinidump()
    synth.add_directory_entry(THREAD_LIST, 48 * 1000, 0xFFFFFF00)
    result = walk_minidump(synth.build(), None)
    assert result.status == "ERROR_NO_THREAD_LIST"


def test_module_list_with_unreadable_name_is_dropped() -> None:
    body = struct.pack("<I", 1) + struct.pack("<QIIII", 0x1000, 0x1000, 0, 0, 0xFFFFFFF0)
    synth = SynthMinidump(platform_id=PLATFORM_LINUX)
    synth.add_raw_stream(MODULE_LIST, body + bytes(108 - 24))
    synth.add_thread(1, amd64_context(rip=0x1800))
    result = walk_minidump(synth.build(), None)
    assert result.ok
    assert "Module|" not in result.to_machine_readable()
    assert frame_lines(result.to_machine_readable()) == ["0|0|||||0x1800"]


def test_zero_sized_module_drops_the_list() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_module(0x1000, 0, "c:\\zero.dll")
    synth.add_module(0x4000, 0x1000, "c:\\fine.dll")
    synth.add_thread(1, x86_context(eip=0x4010))
    assert "Module|" not in walk_minidump(synth.build(), None).to_machine_readable()


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<I", 3) + b"abc\0",  # odd byte length
        struct.pack("<I", 4096) + bytes(4096),  # over Breakpad's 1024 code units
        struct.pack("<I", 2) + b"\x00\xd8",  # lone surrogate
        struct.pack("<I", 8) + b"a\0",  # length past the end of the file
    ],
)
def test_bad_minidump_strings_are_rejected(data: bytes) -> None:
    view = ByteView(data)
    assert view.size == len(data)
    with pytest.raises(MinidumpFormatError):
        read_minidump_string(view, 0)


def test_cyclic_frame_pointer_chain_terminates() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    synth.add_module(0x400000, 0x10000, "/app")
    base = 0x7000_0000
    stack = bytearray(0x40)
    # rbp points at itself and the return address stays in the module: the stack pointer
    # would not advance, so the walk must stop.
    struct.pack_into("<QQ", stack, 0x10, base + 0x10, 0x401000)
    region = synth.add_memory(base, bytes(stack))
    synth.add_thread(1, amd64_context(rip=0x400100, rsp=base + 0x10, rbp=base + 0x10), region)
    frames = frame_lines(walk_minidump(synth.build(), None).to_machine_readable())
    # the frame-pointer step is refused (rbp does not move up); one scanned frame, then the end
    assert frames == ["0|0|app||||0x100", "0|1|app||||0x1000"]


def test_frame_limit_bounds_a_long_stack() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    synth.add_module(0x400000, 0x10000, "/app")
    base = 0x7000_0000
    words = 4096
    stack = bytearray(8 * words)
    for i in range(0, words - 2, 2):  # a frame-pointer chain 2 words per frame
        struct.pack_into("<QQ", stack, 8 * i, base + 8 * (i + 2), 0x401000)
    region = synth.add_memory(base, bytes(stack))
    synth.add_thread(1, amd64_context(rip=0x400100, rsp=base, rbp=base), region)
    result = walk_minidump(synth.build(), None, max_frames_per_thread=100)
    # Breakpad's check is "more than the limit" after appending a frame
    assert len(frame_lines(result.to_machine_readable())) == 101
    thread = result.to_json_dump()["threads"][0]
    assert thread["frames_truncated"] and thread["truncated_reason"] == "frame limit"


def test_overlapping_memory_regions_do_not_break_lookup() -> None:
    synth = SynthMinidump()
    synth.add_memory(0x1000, bytes(0x100))
    synth.add_memory(0x1080, b"\x01" * 0x100)
    dump = Minidump(synth.build())
    region = dump.memory.region_for(0x10F0)
    assert region is not None and region.read_u32(0x10F0) is not None


def test_bad_misc_info_is_only_a_note() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_raw_stream(MISC_INFO, struct.pack("<II", 999, 1) + bytes(20))
    synth.add_thread(1, x86_context(eip=0x10))
    result = walk_minidump(synth.build(), None)
    assert result.ok
    assert result.to_json_dump()["pid"] is None
    assert any("MiscInfo" in note for note in result.notes)


def test_exception_context_out_of_file_falls_back_to_thread_context() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_thread(1, x86_context(eip=0x1234))
    synth.set_exception(1, 0xC0000005)
    data = bytearray(synth.build())
    dump = Minidump(bytes(data))
    entry = dump.streams[6]
    struct.pack_into("<II", data, entry.rva + 160, 716, 0xFFFFFF00)
    text = walk_minidump(bytes(data), None).to_machine_readable()
    assert frame_lines(text) == ["0|0|||||0x1234"]


def test_empty_and_tiny_inputs() -> None:
    assert walk_minidump(b"", None).status == "ERROR_NO_MINIDUMP_HEADER"
    assert walk_minidump(b"MDMP", None).status == "ERROR_NO_MINIDUMP_HEADER"
    assert walk_minidump(b"\x7fELF" + bytes(100), None).status == "ERROR_MINIDUMP_HEADER_MISMATCH"
