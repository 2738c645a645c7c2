"""CPU contexts: identifying the CPU from size and flags, and reading the registers with
Breakpad's names (docs/formats/minidump.md §6)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.system_info import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64,
    ARCH_ARM64_OLD,
    ARCH_MIPS,
    ARCH_MIPS64,
    ARCH_PPC,
    ARCH_PPC64,
    ARCH_RISCV,
    ARCH_RISCV64,
    ARCH_SPARC,
    ARCH_X86,
    ARCH_X86_WIN64,
)
from procsupervisor.workers.stackwalker.model import CPUContext

CPU_MASK = 0xFFFFFF00
FLAG_X86 = 0x00010000
FLAG_AMD64 = 0x00100000
FLAG_ARM = 0x40000000
FLAG_ARM_LEGACY = 0x00000040
FLAG_ARM64 = 0x00400000
FLAG_ARM64_OLD = 0x80000000
FLAG_PPC = 0x20000000
FLAG_PPC64 = 0x01000000
FLAG_SPARC = 0x10000000
FLAG_MIPS = 0x00040000
FLAG_MIPS64 = 0x00080000
FLAG_RISCV = 0x00800000
FLAG_RISCV64 = 0x08000000
FLAG_XSTATE = 0x40

SIZE_X86 = 716
SIZE_AMD64 = 1232
SIZE_ARM = 368
SIZE_ARM64 = 912
SIZE_ARM64_OLD = 796
SIZE_PPC64 = 1160
# Breakpad skips at most this many bytes of XSTATE data after the base context.
MAX_XSTATE_EXTRA = 16384

_BASE_SIZES = {
    FLAG_X86: SIZE_X86,
    FLAG_AMD64: SIZE_AMD64,
    FLAG_ARM: SIZE_ARM,
    FLAG_ARM64: SIZE_ARM64,
    FLAG_PPC: 1004,
    FLAG_SPARC: 584,
    FLAG_MIPS: 600,
    FLAG_MIPS64: 600,
    FLAG_RISCV: 268,
    FLAG_RISCV64: 528,
}

_ARCH_TO_FLAG = {
    ARCH_X86: FLAG_X86,
    ARCH_X86_WIN64: FLAG_X86,
    ARCH_AMD64: FLAG_AMD64,
    ARCH_ARM: FLAG_ARM,
    ARCH_ARM64: FLAG_ARM64,
    ARCH_ARM64_OLD: FLAG_ARM64_OLD,
    ARCH_PPC: FLAG_PPC,
    ARCH_PPC64: FLAG_PPC64,
    ARCH_SPARC: FLAG_SPARC,
    ARCH_MIPS: FLAG_MIPS,
    ARCH_MIPS64: FLAG_MIPS64,
    ARCH_RISCV: FLAG_RISCV,
    ARCH_RISCV64: FLAG_RISCV64,
}

# Which SystemInfo architectures accept a context of each CPU (Breakpad's CheckAgainstSystemInfo).
_ACCEPTED_ARCHES = {
    FLAG_X86: {ARCH_X86, ARCH_X86_WIN64, ARCH_AMD64},
    FLAG_AMD64: {ARCH_AMD64},
    FLAG_ARM: {ARCH_ARM},
    FLAG_ARM64: {ARCH_ARM64},
    FLAG_ARM64_OLD: {ARCH_ARM64_OLD},
    FLAG_PPC: {ARCH_PPC},
    FLAG_PPC64: {ARCH_PPC64},
    FLAG_SPARC: {ARCH_SPARC},
    FLAG_MIPS: {ARCH_MIPS},
    FLAG_MIPS64: {ARCH_MIPS64},
    FLAG_RISCV: {ARCH_RISCV},
    FLAG_RISCV64: {ARCH_RISCV64},
}

X86_REGISTERS = {  # name -> offset (u32)
    "edi": 156, "esi": 160, "ebx": 164, "edx": 168, "ecx": 172, "eax": 176,
    "ebp": 180, "eip": 184, "efl": 192, "esp": 196,
}  # fmt: skip
AMD64_REGISTERS = {  # name -> offset (u64)
    "rax": 120, "rcx": 128, "rdx": 136, "rbx": 144, "rsp": 152, "rbp": 160, "rsi": 168,
    "rdi": 176, "r8": 184, "r9": 192, "r10": 200, "r11": 208, "r12": 216, "r13": 224,
    "r14": 232, "r15": 240, "rip": 248,
}  # fmt: skip
ARM_NAMES = [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
ARM64_NAMES = [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"]

# Breakpad's print order for the JSON `registers` of a context frame (docs/formats/minidump.md
# §6.7).
PRINT_ORDER = {
    "x86": ["eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx", "efl"],
    "amd64": ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
              "r11", "r12", "r13", "r14", "r15", "rip"],
    "arm": [f"r{i}" for i in range(11)] + ["r12", "fp", "sp", "lr", "pc"],
    "arm64": [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"],
}  # fmt: skip


class UnsupportedContext(MinidumpFormatError):
    """A context of a CPU the walker does not handle (ppc, sparc, mips, riscv)."""

    def __init__(self, cpu_flag: int) -> None:
        super().__init__(f"unsupported context CPU {cpu_flag:#x}")
        self.cpu_flag = cpu_flag


def identify(raw: ByteView, arch: int | None) -> int:
    """The context's CPU flag, following Breakpad's MinidumpContext::Read."""
    size = raw.size
    if size == SIZE_AMD64 or (arch == ARCH_AMD64 and size >= SIZE_AMD64):
        if size - SIZE_AMD64 > MAX_XSTATE_EXTRA:
            raise MinidumpFormatError(f"amd64 context of {size} bytes")
        cpu = raw.u32(48) & CPU_MASK
        if cpu == 0 and arch is not None:
            cpu = _ARCH_TO_FLAG.get(arch, 0)
        if cpu != FLAG_AMD64:
            raise MinidumpFormatError(f"amd64-sized context with CPU flags {cpu:#x}")
        return FLAG_AMD64
    if size == SIZE_PPC64:
        raise UnsupportedContext(FLAG_PPC64)
    if size == SIZE_ARM64_OLD:
        cpu = raw.u64(0) & 0xFFFFFFFFFFFFFF00
        if cpu != FLAG_ARM64_OLD:
            raise MinidumpFormatError(f"arm64-old-sized context with CPU flags {cpu:#x}")
        return FLAG_ARM64_OLD
    flags = raw.u32(0)
    cpu = flags & CPU_MASK
    if cpu == 0 and flags & FLAG_ARM_LEGACY:
        cpu = FLAG_ARM
    if cpu == 0 and arch is not None:
        cpu = _ARCH_TO_FLAG.get(arch, 0)
    base = _BASE_SIZES.get(cpu)
    if base is None:
        raise MinidumpFormatError(f"unknown context CPU flags {flags:#x}")
    exact = size == base
    xstate = cpu == FLAG_X86 and flags & FLAG_XSTATE and base < size <= base + MAX_XSTATE_EXTRA
    if not (exact or xstate):
        raise MinidumpFormatError(f"context of {size} bytes for CPU {cpu:#x}")
    return cpu


def parse_context(raw: ByteView, arch: int | None) -> CPUContext:
    """Raises UnsupportedContext for CPUs without a walker, MinidumpFormatError otherwise."""
    cpu = identify(raw, arch)
    if arch is not None and arch not in _ACCEPTED_ARCHES.get(cpu, ()):
        raise MinidumpFormatError(f"context CPU {cpu:#x} does not match architecture {arch:#x}")
    if cpu == FLAG_X86:
        regs = {name: raw.u32(off) for name, off in X86_REGISTERS.items()}
        return _full("x86", regs)
    if cpu == FLAG_AMD64:
        regs = {name: raw.u64(off) for name, off in AMD64_REGISTERS.items()}
        return _full("amd64", regs)
    if cpu == FLAG_ARM:
        values = raw.unpack("16I", 4)
        return _full("arm", dict(zip(ARM_NAMES, values, strict=True)))
    if cpu in (FLAG_ARM64, FLAG_ARM64_OLD):
        # Both layouts keep x0..x28, fp, lr, sp, pc as 33 u64s from offset 8.
        values = raw.unpack("33Q", 8)
        return _full("arm64", dict(zip(ARM64_NAMES, values, strict=True)))
    raise UnsupportedContext(cpu)


def _full(cpu: str, regs: dict[str, int]) -> CPUContext:
    return CPUContext(cpu=cpu, registers=regs, valid=set(regs))


def instruction_pointer(context: CPUContext) -> int:
    name = {"x86": "eip", "amd64": "rip"}.get(context.cpu, "pc")
    return context.registers.get(name, 0)


def stack_pointer(context: CPUContext) -> int:
    name = {"x86": "esp", "amd64": "rsp"}.get(context.cpu, "sp")
    return context.registers.get(name, 0)
