"""The `stackwalk` command on a synthetic crash whose module has a generated .sym file."""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from minidump_synth import (
    ARCH_AMD64,
    PLATFORM_LINUX,
    SymFunction,
    SynthMinidump,
    amd64_context,
    cv_elf,
    elf_debug_id,
    sym_text,
    write_sym,
)
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.cli import stackwalk

BUILD_ID = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")
STACK = 0x7FFF_0000


@pytest.fixture
def crash(tmp_path: Path) -> tuple[Path, Path]:
    """A Linux amd64 crash in `crash_here`, called from `main`, with its symbols."""
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, csd_version="Linux 6.1")
    synth.add_module(0x400000, 0x10000, "/opt/demo/demo", cv=cv_elf(BUILD_ID))
    stack = bytearray(0x80)
    struct.pack_into("<QQ", stack, 0x10, 0, 0x401085)  # saved rbp, return into main
    region = synth.add_memory(STACK, bytes(stack))
    context = amd64_context(rip=0x401108, rsp=STACK, rbp=STACK + 0x10)
    synth.add_thread(42, context, region)
    synth.set_exception(42, code=11, flags=1, address=0, context=context)
    dump = tmp_path / "demo.dmp"
    dump.write_bytes(synth.build())
    root = tmp_path / "symbols"
    functions = [
        SymFunction(0x1000, 0x100, "main", line=7, file="demo.c"),
        SymFunction(0x1100, 0x40, "crash_here", line=3, file="demo.c"),
    ]
    write_sym(
        root, "demo", elf_debug_id(BUILD_ID), sym_text("demo", elf_debug_id(BUILD_ID), functions)
    )
    return dump, root


def test_machine_readable_with_symbols(crash: tuple[Path, Path]) -> None:
    dump, root = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[3] == "Crash|SIGSEGV /SEGV_MAPERR|0x0|0"
    assert "0|0|demo|crash_here|demo.c|3|0x8" in lines
    assert "0|1|demo|main|demo.c|7|0x85" in lines


def test_json_output(crash: tuple[Path, Path]) -> None:
    dump, root = crash
    result = CliRunner().invoke(
        stackwalk, [str(dump), "--symbols-path", str(root), "--json", "--pretty"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "OK"
    assert data["crashing_thread"]["frames"][0]["function"] == "crash_here"
    assert data["modules"][0]["loaded_symbols"] is True


def test_shared_cache_gives_the_same_output(crash: tuple[Path, Path], tmp_path: Path) -> None:
    dump, root = crash
    plain = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(root)])
    args = [str(dump), "--symbols-path", str(root), "--cache-dir", str(tmp_path / "cache")]
    cold = CliRunner().invoke(stackwalk, args)
    warm = CliRunner().invoke(stackwalk, args)
    assert cold.exit_code == warm.exit_code == 0, cold.output
    assert plain.output == cold.output == warm.output


def test_rejected_dump_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"MDMP" + bytes(40))
    result = CliRunner().invoke(stackwalk, [str(bad)])
    assert result.exit_code == 1
    assert "ERROR_" in result.output


def test_exclusive_output_flags(crash: tuple[Path, Path]) -> None:
    dump, _ = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--json", "--machine-readable"])
    assert result.exit_code == 2


def test_api_accepts_an_mmap(crash: tuple[Path, Path]) -> None:
    dump, _ = crash
    with dump.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        result = walk_minidump(mapped, None)
        text = result.to_machine_readable()
    assert result.ok
    assert "0|0|demo||||0x1108" in text
