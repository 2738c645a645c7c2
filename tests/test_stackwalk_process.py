"""Dump -> ProcessState -> `-m` text and json_dump, on synthetic dumps."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from procsupervisor.workers.stackwalker import api
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_X86,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
    cv_elf,
    cv_pdb70,
    x86_context,
)
from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    SymbolLookup,
    WindowsFrameInfo,
)
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError

BUILD_ID = bytes.fromhex("b0e1fc01ef48e39caf5c881d2df0c384aabbccdd")
STACK_BASE = 0x7FFE0000


@dataclass
class FakeIndex:
    """Two functions: `main` with a line record, `caller` without one."""

    def lookup(self, rel: int) -> SymbolLookup | None:
        if 0x1000 <= rel < 0x1100:
            return SymbolLookup("main", 0x1000, source_file="src/main.c", source_line=10,
                                source_line_base=0x1000)  # fmt: skip
        if 0x1200 <= rel < 0x1300:
            return SymbolLookup("caller", 0x1200)
        return None

    def find_windows_frame_info(self, rel: int) -> WindowsFrameInfo | None:
        return None

    def find_cfi_rules(self, rel: int) -> dict[str, str] | None:
        return None


class FakeProvider:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_symbols(self, module: CodeModule) -> FakeIndex | None:
        self.asked.append(module.code_file)
        return FakeIndex() if module.code_file == "/usr/bin/app" else None


def linux_crash(*, with_exception: bool = True) -> SynthMinidump:
    """amd64 Linux: main (0x401010) called from caller (returns to 0x401234) via an rbp chain."""
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, csd_version="Linux 6.1")
    synth.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(BUILD_ID))
    synth.add_module(0x7F0000000000, 0x2000, "/lib/libc.so.6", cv=cv_elf(BUILD_ID[::-1]))
    stack = bytearray(0x100)
    struct.pack_into("<QQ", stack, 0x10, STACK_BASE + 0x40, 0x401234)
    region = synth.add_memory(STACK_BASE, bytes(stack))
    context = amd64_context(rip=0x401010, rsp=STACK_BASE, rbp=STACK_BASE + 0x10)
    synth.add_thread(100, None if with_exception else context, region)
    synth.add_thread(101, amd64_context(rip=0x7F0000000100, rsp=STACK_BASE), region)
    if with_exception:
        synth.set_exception(100, code=11, flags=1, address=0x10, context=context)
    return synth


def test_linux_crash_machine_readable() -> None:
    provider = FakeProvider()
    result = walk_minidump(linux_crash().build(), provider)
    assert result.status == "OK"
    debug_id = "01FCE1B048EF9CE3AF5C881D2DF0C3840"
    expected = [
        "OS|Linux|0.0.0 Linux 6.1",
        "CPU|amd64|family 6 model 63 stepping 2|1",
        "GPU|||",
        "Crash|SIGSEGV /SEGV_MAPERR|0x10|0",
        f"Module|app||app|{debug_id}|0x00400000|0x0040ffff|1",
        "Module|libc.so.6||libc.so.6|AABBCCDDC3842DF01D885CAF9CE348EF0|0x7f0000000000"
        "|0x7f0000001fff|0",
        "",
        "0|0|app|main|src/main.c|10|0x10",
        "0|1|app|caller|||0x34",
        "1|0|libc.so.6||||0x100",
    ]
    lines = result.to_machine_readable().splitlines()
    assert lines[: len(expected)] == expected
    assert provider.asked.count("/usr/bin/app") == 1  # cached by code_file for the whole dump


class RaisingProvider:
    def get_symbols(self, module: CodeModule) -> FakeIndex | None:
        raise OSError(5, "Input/output error")


class DamagedIndex(FakeIndex):
    def lookup(self, rel: int) -> SymbolLookup | None:
        raise SymbolIndexError("crc mismatch")


class DamagedProvider:
    def get_symbols(self, module: CodeModule) -> FakeIndex | None:
        return DamagedIndex() if module.code_file == "/usr/bin/app" else None


def test_a_damaged_index_is_reported_as_not_loaded_for_the_whole_dump() -> None:
    result = walk_minidump(linux_crash().build(), DamagedProvider())
    assert result.status == "OK"
    assert "symbols for '/usr/bin/app' are damaged: crc mismatch" in result.notes
    assert "0|0|app||||0x1010" in result.to_machine_readable().splitlines()
    app = result.to_json_dump()["modules"][0]
    assert app["missing_symbols"] and not app["loaded_symbols"]


def test_a_failing_symbol_provider_is_a_note_not_a_lost_crash() -> None:
    result = walk_minidump(linux_crash().build(), RaisingProvider())
    assert result.status == "OK"
    assert "symbols for '/usr/bin/app' failed to load: OSError: [Errno 5] Input/output error" in (
        result.notes
    )
    assert "0|0|app||||0x1010" in result.to_machine_readable().splitlines()
    app = result.to_json_dump()["modules"][0]
    assert app["missing_symbols"] and not app["loaded_symbols"]


def test_an_internal_failure_is_a_status_never_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("walker bug")

    monkeypatch.setattr(api, "process_minidump", broken)
    result = walk_minidump(linux_crash().build(), None)
    assert result.status == "ERROR_INTERNAL" and not result.ok
    assert result.notes == ["stackwalker failed: RuntimeError: walker bug"]
    assert result.to_json_dump() == {"status": "ERROR_INTERNAL", "notes": result.notes}
    assert result.to_machine_readable() == ""


def test_json_dump_shape() -> None:
    result = walk_minidump(linux_crash().build(), FakeProvider())
    dump = result.to_json_dump()
    assert dump["status"] == "OK"
    # rust-minidump's reason text (the -m text keeps Breakpad's "SIGSEGV /SEGV_MAPERR"); a
    # null pointer is one flip away from 0x10, and nothing in the dump says more.
    null_flip = {
        "address": "0x0000000000000000",
        "confidence": 0.4375,
        "details": {
            "is_null": True,
            "nearby_registers": 0,
            "poison_registers": False,
            "was_low": True,
            "was_non_canonical": False,
        },
        "source_register": None,
    }
    assert dump["crash_info"] == {
        "type": "SIGSEGV / SEGV_MAPERR",
        "address": "0x0000000000000010",
        "adjusted_address": None,
        "instruction": None,
        "memory_accesses": None,
        "instruction_pointer_update": None,
        "possible_bit_flips": [null_flip],
        "crash_inconsistencies": [],
        "crashing_thread": 0,
        "assertion": None,
    }
    assert dump["thread_count"] == 2
    crashing = dump["crashing_thread"]
    assert crashing["threads_index"] == 0
    top = crashing["frames"][0]
    assert (top["module"], top["function"], top["file"], top["line"]) == (
        "app", "main", "src/main.c", 10,
    )  # fmt: skip
    assert top["registers"]["rip"] == "0x0000000000401010"
    assert top["trust"] == "context"
    assert crashing["frames"][1]["module_offset"] == "0x0000000000001233"
    app, libc = dump["modules"]
    assert app["loaded_symbols"] and not app["missing_symbols"]
    assert app["code_id"] == BUILD_ID.hex()
    assert libc["missing_symbols"] and not libc["loaded_symbols"]
    assert dump["main_module"] == 0
    assert dump["system_info"]["os"] == "Linux"


def test_without_exception_the_thread_context_is_used_and_no_crash() -> None:
    result = walk_minidump(linux_crash(with_exception=False).build(), None)
    text = result.to_machine_readable()
    assert "Crash|No crash||\n" in text
    assert "0|0|app||||0x1010\n" in text


def test_dump_thread_is_dropped_and_indices_shift() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_module(0x400000, 0x1000, "c:\\a.exe")
    for tid in (1, 2, 3):
        synth.add_thread(tid, x86_context(eip=0x400010 + tid, esp=0x1000))
    synth.add_breakpad_info(dump_thread_id=1, requesting_thread_id=3)
    text = walk_minidump(synth.build(), None).to_machine_readable()
    assert "Crash|No crash||1\n" in text
    frames = [line for line in text.splitlines() if line[:1].isdigit()]
    assert frames == ["1|0|a.exe||||0x13", "0|0|a.exe||||0x12"]


def test_duplicate_requesting_threads() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_thread(5, x86_context())
    synth.add_thread(5, x86_context())
    synth.set_exception(5, 0xC0000005)
    result = walk_minidump(synth.build(), None)
    assert result.status == "ERROR_DUPLICATE_REQUESTING_THREADS"
    assert result.to_machine_readable() == ""


def test_no_thread_list() -> None:
    result = walk_minidump(SynthMinidump().build(), None)
    assert result.status == "ERROR_NO_THREAD_LIST"
    assert result.to_json_dump()["status"] == "ERROR_NO_THREAD_LIST"


@pytest.mark.parametrize(
    ("platform", "arch", "code", "flags", "params", "line"),
    [
        (PLATFORM_WINDOWS, ARCH_X86, 0xC0000005, 0, [1, 0xFFFFFFFF00000045],
         "Crash|EXCEPTION_ACCESS_VIOLATION_WRITE|0x45|0"),
        (PLATFORM_WINDOWS, ARCH_AMD64, 0xC0000409, 0, [7],
         "Crash|FAST_FAIL_FATAL_APP_EXIT|0x77|0"),
        (PLATFORM_WINDOWS, ARCH_AMD64, 0xC0000006, 0, [0, 0x10, 0xC000009C],
         "Crash|EXCEPTION_IN_PAGE_ERROR_READ / STATUS_DEVICE_DATA_ERROR|0x10|0"),
        (PLATFORM_WINDOWS, ARCH_AMD64, 0xC000000D, 0, [],
         "Crash|0xc000000d / 0x00000000|0x77|0"),
        (PLATFORM_LINUX, ARCH_AMD64, 4, 0, [], "Crash|SIGILL / 0x00000000|0x77|0"),
        (PLATFORM_LINUX, ARCH_AMD64, 6, 0, [], "Crash|SIGABRT|0x77|0"),
        (PLATFORM_MAC, ARCH_AMD64, 2, 1, [], "Crash|EXC_BAD_INSTRUCTION / EXC_I386_INVOP|0x77|0"),
        (PLATFORM_MAC, ARCH_AMD64, 0x43506E78, 0, [], "Crash|Uncaught NSException|0x77|0"),
    ],
)  # fmt: skip
def test_crash_lines(
    platform: int, arch: int, code: int, flags: int, params: list[int], line: str
) -> None:
    synth = SynthMinidump(platform_id=platform, arch=arch)
    context = x86_context(eip=0x77) if arch == ARCH_X86 else amd64_context(rip=0x77)
    synth.add_thread(9, context)
    synth.set_exception(9, code, flags, 0x77, params)
    assert line in walk_minidump(synth.build(), None).to_machine_readable().splitlines()


def test_assertion_crash_line() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_X86)
    synth.add_thread(9, x86_context())
    synth.add_assertion("", "", "", 0, 2)
    lines = walk_minidump(synth.build(), None).to_machine_readable().splitlines()
    assert "Crash|Pure virtual function called||" in lines


def test_overlapping_modules_drop_the_list_on_windows_but_not_on_linux() -> None:
    for platform, kept in ((PLATFORM_WINDOWS, 0), (PLATFORM_LINUX, 2)):
        synth = SynthMinidump(platform_id=platform, arch=ARCH_AMD64)
        synth.add_module(0x1000, 0x3000, "/a")
        synth.add_module(0x2000, 0x3000, "/b")
        synth.add_thread(1, amd64_context(rip=0x2800))
        text = walk_minidump(synth.build(), None).to_machine_readable()
        assert text.count("Module|") == kept
        if kept:  # the lower module's lookup range is cut below the higher one
            assert "0|0|b||||0x800" in text
            assert "Module|a||||0x00001000|0x00003fff|1" in text


def test_module_lines_sorted_duplicates_skipped_and_separators_stripped() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_MAC, arch=ARCH_AMD64)
    guid = bytes(range(16))
    synth.add_module(0x9000, 0x1000, "/x/ma|in", cv=cv_pdb70(guid, 0, "main"))
    synth.add_module(0x1000, 0x1000, "/x/lib")
    synth.add_module(0x9000, 0x1000, "/x/ma|in", cv=cv_pdb70(guid, 0, "main"))
    synth.add_thread(1, amd64_context(rip=1))
    lines = walk_minidump(synth.build(), None).to_machine_readable().splitlines()
    modules = [line for line in lines if line.startswith("Module|")]
    assert modules == [
        "Module|lib||||0x00001000|0x00001fff|0",
        "Module|main||main|030201000504070608090A0B0C0D0E0F0|0x00009000|0x00009fff|1",
    ]


def test_x86_stack_above_4gib_gives_only_the_context_frame() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_AMD64)
    synth.add_module(0x400000, 0x10000, "c:\\a.exe")
    stack = synth.add_memory(0x1_0000_0000, struct.pack("<II", 0, 0x400100) * 8)
    synth.add_thread(1, x86_context(eip=0x400010, esp=0, ebp=0), stack)
    text = walk_minidump(synth.build(), None).to_machine_readable()
    assert [line for line in text.splitlines() if line[:1].isdigit()] == ["0|0|a.exe||||0x10"]


def test_deadline_marks_threads_truncated() -> None:
    result = walk_minidump(linux_crash().build(), None, deadline_s=-1.0)
    threads = result.to_json_dump()["threads"]
    assert all(t["frames_truncated"] for t in threads)
