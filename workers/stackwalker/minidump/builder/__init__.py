"""A minidump writer (rust-minidump's minidump-synth is the model) and matching Breakpad `.sym`
text: for tests, fuzzing and the demo (scripts/run_demo.py).

    from procsupervisor.workers.stackwalker.minidump.builder import (
        ARCH_AMD64, PLATFORM_LINUX, SynthMinidump, amd64_context, cv_elf)
    dump = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    dump.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(build_id))
    data = dump.build()

Parts: `writer` (constants, data area), `contexts` (CPU contexts, CodeView records), `dump`
(`SynthMinidump`), `symfile` (`.sym` text and Breakpad's file layout), `demo` (a ready crash).
"""

from __future__ import annotations

from procsupervisor.workers.stackwalker.minidump.builder.contexts import (
    amd64_context,
    arm64_context,
    arm_context,
    cv_elf,
    cv_pdb20,
    cv_pdb70,
    elf_debug_id,
    x86_context,
)
from procsupervisor.workers.stackwalker.minidump.builder.demo import (
    DEMO_BUILD_ID,
    write_demo_crash,
)
from procsupervisor.workers.stackwalker.minidump.builder.dump import (
    Memory,
    SynthMinidump,
    SynthModule,
    SynthThread,
)
from procsupervisor.workers.stackwalker.minidump.builder.symfile import (
    SymFunction,
    sym_text,
    write_sym,
)
from procsupervisor.workers.stackwalker.minidump.builder.writer import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64,
    ARCH_ARM64_OLD,
    ARCH_X86,
    PLATFORM_ANDROID,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WINDOWS,
    SIGNATURE,
    VERSION,
    Piece,
    Writer,
)

__all__ = [
    "ARCH_AMD64",
    "ARCH_ARM",
    "ARCH_ARM64",
    "ARCH_ARM64_OLD",
    "ARCH_X86",
    "DEMO_BUILD_ID",
    "PLATFORM_ANDROID",
    "PLATFORM_LINUX",
    "PLATFORM_MAC",
    "PLATFORM_WINDOWS",
    "SIGNATURE",
    "VERSION",
    "Memory",
    "Piece",
    "SymFunction",
    "SynthMinidump",
    "SynthModule",
    "SynthThread",
    "Writer",
    "amd64_context",
    "arm64_context",
    "arm_context",
    "cv_elf",
    "cv_pdb20",
    "cv_pdb70",
    "elf_debug_id",
    "sym_text",
    "write_demo_crash",
    "write_sym",
    "x86_context",
]
