"""A ready demo crash with its symbols, for the `stackwalk` command's tests and first users."""

from __future__ import annotations

import struct
from pathlib import Path

from procsupervisor.workers.stackwalker.minidump.builder.contexts import (
    amd64_context,
    cv_elf,
    elf_debug_id,
)
from procsupervisor.workers.stackwalker.minidump.builder.dump import SynthMinidump
from procsupervisor.workers.stackwalker.minidump.builder.symfile import (
    SymFunction,
    sym_text,
    write_sym,
)
from procsupervisor.workers.stackwalker.minidump.builder.writer import ARCH_AMD64, PLATFORM_LINUX

DEMO_BUILD_ID = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")


def write_demo_crash(folder: Path) -> tuple[Path, Path]:
    """A Linux amd64 SIGSEGV in `crash_here` (demo.c:3) called from `main` (demo.c:7), and the
    matching symbol root. Returns (dump path, symbols root); walk it with
    `procsupervisor stackwalk <dump> --symbols-path <root>`."""
    stack_base = 0x7FFF_0000
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, csd_version="Linux 6.1")
    synth.add_module(0x400000, 0x10000, "/opt/demo/demo", cv=cv_elf(DEMO_BUILD_ID))
    stack = bytearray(0x80)
    struct.pack_into("<QQ", stack, 0x10, 0, 0x401085)  # saved rbp, return address into main
    region = synth.add_memory(stack_base, bytes(stack))
    context = amd64_context(rip=0x401108, rsp=stack_base, rbp=stack_base + 0x10)
    synth.add_thread(42, context, region)
    synth.set_exception(42, code=11, flags=1, address=0, context=context)
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "demo.dmp"
    dump.write_bytes(synth.build())
    root = folder / "symbols"
    debug_id = elf_debug_id(DEMO_BUILD_ID)
    functions = [
        SymFunction(0x1000, 0x100, "main", line=7, file="demo.c"),
        SymFunction(0x1100, 0x40, "crash_here", line=3, file="demo.c"),
    ]
    write_sym(root, "demo", debug_id, sym_text("demo", debug_id, functions))
    return dump, root
