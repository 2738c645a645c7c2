"""Streams parsed from synthetic minidumps (workers/stackwalker/minidump/builder/)."""

from __future__ import annotations

import struct

import pytest

from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_X86,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WINDOWS,
    SynthMinidump,
    cv_elf,
    cv_pdb20,
    cv_pdb70,
    x86_context,
)
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.header import HeaderError
from procsupervisor.workers.stackwalker.minidump.stream_types import (
    LINUX_LSB_RELEASE,
    LINUX_MAPS,
    LINUX_PROC_STATUS,
)

GUID = bytes.fromhex("e532985a7228c141838ed98914e9b7ff")


def test_header_and_directory() -> None:
    dump = Minidump(SynthMinidump().build())
    assert dump.header.version & 0xFFFF == 0xA793
    assert 7 in dump.streams


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"signature": 0x12345678}, "ERROR_MINIDUMP_HEADER_MISMATCH"),
        ({"version": 0x1234}, "ERROR_MINIDUMP_HEADER_MISMATCH"),
        ({"stream_count": 1000}, "ERROR_NO_MINIDUMP_HEADER"),
        ({"directory_rva": 0xFFFFFF00}, "ERROR_NO_MINIDUMP_HEADER"),
    ],
)
def test_bad_headers(kwargs: dict[str, int], status: str) -> None:
    with pytest.raises(HeaderError) as caught:
        Minidump(SynthMinidump().build(**kwargs))
    assert caught.value.status == status


def test_big_endian_file_is_read() -> None:
    synth = SynthMinidump(big_endian=True, platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.csd_version = "Service Pack 2"
    synth.os_version = (5, 1, 2600)
    dump = Minidump(synth.build())
    assert dump.system_info is not None
    assert dump.system_info.os_version == "5.1.2600 Service Pack 2"
    assert dump.system_info.cpu_info == "GenuineIntel family 6 model 63 stepping 2"


def test_duplicate_unique_stream_rejects_the_dump() -> None:
    synth = SynthMinidump()
    synth.add_breakpad_info(1, 2)
    synth.add_breakpad_info(1, 2)
    with pytest.raises(HeaderError):
        Minidump(synth.build())


def test_system_info_strings() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86, os_version=(6, 1, 7600))
    info = Minidump(synth.build()).system_info
    assert info is not None
    assert (info.os, info.os_version, info.cpu) == ("Windows NT", "6.1.7600 ", "x86")
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, csd_version=None)
    info = Minidump(synth.build()).system_info
    assert info is not None
    assert info.os_version == "0.0.0"  # no CSD string: no trailing space
    assert info.cpu_info == "family 6 model 63 stepping 2"


def test_arm_cpu_info() -> None:
    synth = SynthMinidump(arch=ARCH_ARM, processor_level=7)
    data = bytearray(synth.build())
    dump = Minidump(bytes(data))
    entry = dump.streams[7]
    struct.pack_into("<II", data, entry.rva + 32, 0x4100C090, 0b1000000000111)
    info = Minidump(bytes(data)).system_info
    assert info is not None
    assert info.cpu_info == "ARMv7 ARM Cortex-A9 features: swp,half,thumb,neon"


def test_module_identities() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_module(
        0x400000, 0x2D000, "c:\\app\\test_app.exe", cv=cv_pdb70(GUID, 1, "c:\\b\\test_app.pdb"),
        version=(5, 1, 2600, 2180), time_date_stamp=0x45D35F6C,
    )  # fmt: skip
    synth.add_module(0x500000, 0x1000, "old.dll", cv=cv_pdb20(0x3A1B2C3D, 10, "old.pdb"))
    synth.add_module(0x600000, 0x1000, "bare.dll")
    modules = Minidump(synth.build()).modules
    assert modules is not None
    app, old, bare = modules
    assert app.debug_identifier == "5A9832E5287241C1838ED98914E9B7FF1"
    assert app.debug_file == "c:\\b\\test_app.pdb"
    assert app.code_identifier == "45D35F6C2d000"
    assert app.version == "5.1.2600.2180"
    assert old.debug_identifier == "3A1B2C3Da"
    assert (bare.debug_file, bare.debug_identifier, bare.version) == ("", "", "")


def test_elf_module_identity() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_LINUX)
    build_id = bytes.fromhex("00112233445566778899aabbccddeeff10203040")
    synth.add_module(0x400000, 0x1000, "/usr/lib/libfoo.so", cv=cv_elf(build_id))
    synth.add_module(
        0x500000, 0x1000, "/lib/short.so", cv=cv_elf(bytes.fromhex("10faa6bbaab83db3"))
    )
    synth.add_module(0x600000, 0x1000, "/lib/noid.so")
    modules = Minidump(synth.build()).modules
    assert modules is not None
    foo, short, noid = modules
    assert foo.debug_identifier == "33221100554477668899AABBCCDDEEFF0"
    assert foo.debug_file == "/usr/lib/libfoo.so"
    assert foo.code_identifier == build_id.hex()
    assert short.debug_identifier == "BBA6FA10B8AAB33D00000000000000000"
    assert noid.code_identifier == "id"


def test_truncated_codeview_keeps_module_without_debug_info() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS)
    synth.add_module(0x400000, 0x1000, "a.dll", cv=b"RSDS" + GUID)  # too short, no name
    modules = Minidump(synth.build()).modules
    assert modules is not None
    assert (modules[0].debug_file, modules[0].debug_identifier) == ("", "")


def test_padded_lists_of_the_old_mac_writer() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_MAC, pad_lists=True)
    stack = synth.add_memory(0x7000, bytes(64))
    synth.add_thread(7, x86_context(), stack)
    synth.add_module(0x1000, 0x1000, "/Applications/A.app/A", cv=cv_pdb70(GUID, 0, "A"))
    dump = Minidump(synth.build())
    assert dump.threads is not None and dump.threads[0].thread_id == 7
    assert dump.modules is not None and dump.modules[0].code_file.endswith("/A")
    assert dump.memory.region_for(0x7010) is not None


def test_list_count_must_match_size() -> None:
    synth = SynthMinidump()
    synth.add_raw_stream(3, struct.pack("<I", 5) + bytes(48))
    dump = Minidump(synth.build())
    assert dump.threads is None
    assert any("ThreadList" in note for note in dump.notes)


def test_thread_names_and_unloaded_modules() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS)
    synth.add_thread_names({1: "main", 2: ""})
    synth.add_unloaded_module(0x9000, 0x1000, "C:\\gone.dll")
    dump = Minidump(synth.build())
    assert dump.thread_names == {1: "main", 2: ""}
    assert [m.code_file for m in dump.unloaded_modules] == ["C:\\gone.dll"]
    assert dump.unloaded_modules[0].is_unloaded


def test_exception_breakpad_info_assertion_misc() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS)
    synth.set_exception(5, 0xC0000005, 0, 0x1234, [1, 0x45])
    synth.add_breakpad_info(dump_thread_id=9, requesting_thread_id=5)
    synth.add_assertion("x != 0", "f", "a.c", 12, 1)
    synth.add_misc_info(4242, 100)
    dump = Minidump(synth.build())
    assert dump.exception is not None
    assert (dump.exception.thread_id, dump.exception.parameters) == (5, [1, 0x45])
    assert dump.breakpad_info is not None and dump.breakpad_info.dump_thread_id == 9
    assert dump.assertion is not None
    assert dump.assertion.describe() == (
        "Invalid parameter passed to library function x != 0 in function f, in file a.c at line 12"
    )
    assert dump.misc_info is not None and dump.misc_info.process_id == 4242


def test_linux_text_streams_and_crashpad() -> None:
    synth = SynthMinidump()
    synth.add_text_stream(LINUX_LSB_RELEASE, 'DISTRIB_ID=Ubuntu\nDISTRIB_DESCRIPTION="Ubuntu 22"\n')
    synth.add_text_stream(LINUX_PROC_STATUS, "Name:\tapp\nPid:\t77\n")
    synth.add_text_stream(LINUX_MAPS, "00400000-00401000 r-xp 0 0 0 /app\n")
    synth.add_crashpad_info({"exceptionName": "NSRangeException"})
    dump = Minidump(synth.build())
    assert dump.lsb_release is not None
    assert dump.lsb_release["id"] == "Ubuntu"
    assert dump.lsb_release["description"] == "Ubuntu 22"
    assert dump.linux_proc_status == {"Name": "app", "Pid": "77"}
    assert dump.crashpad_info is not None
    assert dump.crashpad_info.simple_annotations == {"exceptionName": "NSRangeException"}


def test_memory64_list_regions_lie_back_to_back() -> None:
    synth = SynthMinidump()
    body = struct.pack("<QQ", 2, 0) + struct.pack("<QQ", 0x1000, 4) + struct.pack("<QQ", 0x2000, 8)
    synth.add_raw_stream(9, body)
    dump = Minidump(synth.build())
    first, second = dump.memory64_list
    assert second.rva == first.rva + 4
