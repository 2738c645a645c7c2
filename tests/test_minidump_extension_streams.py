"""Linux, Crashpad and Mozilla extension streams (docs/formats/minidump.md §3.12 to 3.14)."""

from __future__ import annotations

import struct
from pathlib import Path

from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.builder import (
    SynthMinidump,
    Writer,
    amd64_context,
)
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.stream_types import (
    LINUX_AUXV,
    LINUX_CMD_LINE,
    LINUX_CPU_INFO,
    LINUX_DSO_DEBUG,
    LINUX_ENVIRON,
    LINUX_PROC_STATUS,
    MOZ_MACOS_CRASH_INFO,
    MOZ_SOFT_ERRORS,
)


def test_breakpad_linux_dso_debug_from_real_dump(testdata: Path) -> None:
    dump = Minidump((testdata / "breakpad/linux_divide_by_zero.dmp").read_bytes())
    debug = dump.linux_dso_debug
    assert debug is not None
    assert debug.version == 1
    assert debug.brk == 0x7F3F0EB49970  # at offset 16 (natural alignment), not 12
    assert len(debug.link_maps) == 8
    assert any(name.endswith("libpthread.so.0") for _addr, name, _ld in debug.link_maps)
    assert dump.linux_cmdline == ["./driver"]
    assert dump.linux_auxv is not None and dump.linux_auxv[2] == (6, 4096)  # AT_PAGESZ


def test_crashpad_annotations_from_real_dump(testdata: Path) -> None:
    dump = Minidump((testdata / "breakpad/minidump_crashpad_annotation.dmp").read_bytes())
    info = dump.crashpad_info
    assert info is not None and info.version == 1
    annotations = {
        key: value
        for module in info.module_list
        for key, value in {**module.simple_annotations, **module.annotation_objects}.items()
    }
    assert annotations  # this iOS dump carries per-module annotations


def test_synthetic_linux_streams() -> None:
    synth = SynthMinidump()
    synth.add_raw_stream(LINUX_AUXV, struct.pack("<4Q", 6, 4096, 0, 0))
    synth.add_raw_stream(LINUX_CMD_LINE, b"/bin/app\0--flag\0")
    synth.add_raw_stream(LINUX_ENVIRON, b"A=1\0B=2\0")

    def dso(w: Writer) -> bytes:
        name = w.string("/lib/libc.so.6")
        link_map = w.place(struct.pack("<QI4xQ", 0x7F00, name, 0x7F10))
        return struct.pack("<III4xQQQ", 1, link_map, 1, 0x1234, 0x5678, 0x9ABC)

    synth.add_stream(LINUX_DSO_DEBUG, dso)
    dump = Minidump(synth.build())
    assert dump.linux_auxv == [(6, 4096), (0, 0)]
    assert dump.linux_cmdline == ["/bin/app", "--flag"]
    assert dump.linux_environ == ["A=1", "B=2"]
    debug = dump.linux_dso_debug
    assert debug is not None
    assert (debug.brk, debug.ldbase, debug.dynamic) == (0x1234, 0x5678, 0x9ABC)
    assert debug.link_maps == [(0x7F00, "/lib/libc.so.6", 0x7F10)]


def test_microcode_version_from_linux_cpuinfo() -> None:
    synth = SynthMinidump()
    synth.add_thread(1, amd64_context(rip=0x1000))
    synth.add_text_stream(LINUX_CPU_INFO, "processor\t: 0\nmicrocode\t: 0xde\n")
    info = walk_minidump(synth.build(), None).to_json_dump()["system_info"]
    assert info["cpu_microcode_version"] == "0xde"


def test_mac_crash_info_records() -> None:
    synth = SynthMinidump()

    def crash_info(w: Writer) -> bytes:
        fixed = struct.pack("<QQQQQ", MOZ_MACOS_CRASH_INFO, 5, 0x1403, 0, 6)
        strings = b"/usr/lib/libsystem_c.dylib\0abort() called\0\0\0\0"
        record = fixed + strings
        rva = w.place(record)
        locations = struct.pack("<II", len(record), rva) + bytes(8 * 19)
        return struct.pack("<III", MOZ_MACOS_CRASH_INFO, 1, len(fixed)) + locations

    synth.add_stream(MOZ_MACOS_CRASH_INFO, crash_info)
    data = synth.build()
    records = Minidump(data).mac_crash_info
    assert records is not None and len(records) == 1
    record = records[0]
    assert (record.version, record.thread, record.abort_cause) == (5, 0x1403, 6)
    assert record.strings["module_path"] == "/usr/lib/libsystem_c.dylib"
    assert record.strings["message"] == "abort() called"


def test_json_dump_carries_the_extension_streams(testdata: Path) -> None:
    result = walk_minidump((testdata / "rust-minidump/linux-mini.dmp").read_bytes(), None)
    dump = result.to_json_dump()
    assert dump["lsb_release"]["id"] == "Ubuntu"
    assert dump["linux_memory_map_count"] > 0
    assert dump["soft_errors"] is not None  # this dump has a MozSoftErrors stream
    assert dump["pid"] is not None


def _json_dump_with(*streams: tuple[int, str]) -> dict[str, object]:
    synth = SynthMinidump()
    synth.add_thread(1, amd64_context(rip=0x1000))
    for stream_type, content in streams:
        synth.add_text_stream(stream_type, content)
    result = walk_minidump(synth.build(), None)
    assert result.ok
    return result.to_json_dump()


def test_soft_errors_and_pid_from_synthetic_streams() -> None:
    dump = _json_dump_with(
        (MOZ_SOFT_ERRORS, '[{"kind": "x"}]'), (LINUX_PROC_STATUS, "Name:\tapp\nPid:\t77\n")
    )
    assert dump["soft_errors"] == [{"kind": "x"}]
    assert dump["pid"] == 77


def test_hostile_soft_errors_and_pid_render_as_null() -> None:
    for soft_errors, pid in (("[" * 100_000 + "]" * 100_000, "\u00b2"), ("{not json", "-1")):
        dump = _json_dump_with(
            (MOZ_SOFT_ERRORS, soft_errors), (LINUX_PROC_STATUS, f"Pid:\t{pid}\n")
        )
        assert dump["soft_errors"] is None and dump["pid"] is None
