"""CPU contexts and CodeView records, as the writers of real minidumps lay them out
(docs/formats/minidump.md; register offsets are Breakpad's MDRawContext* structures)."""

from __future__ import annotations

import struct


def x86_context(flags: int = 0x1003F, **registers: int) -> bytes:
    """A 716-byte MDRawContextX86; registers by Breakpad name (eip, esp, ebp, eax, ..., efl)."""
    offsets = {
        "edi": 156, "esi": 160, "ebx": 164, "edx": 168, "ecx": 172, "eax": 176,
        "ebp": 180, "eip": 184, "efl": 192, "esp": 196,
    }  # fmt: skip
    raw = bytearray(716)
    struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<I", raw, offsets[name], value & 0xFFFFFFFF)
    return bytes(raw)


def amd64_context(flags: int = 0x10000B, extra: int = 0, **registers: int) -> bytes:
    """A 1232-byte MDRawContextAMD64 (plus `extra` XSTATE bytes)."""
    names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]  # fmt: skip
    raw = bytearray(1232 + extra)
    struct.pack_into("<I", raw, 48, flags)
    for name, value in registers.items():
        struct.pack_into("<Q", raw, 120 + 8 * names.index(name), value)
    return bytes(raw)


def arm_context(flags: int = 0x40000006, **registers: int) -> bytes:
    """A 368-byte MDRawContextARM; registers r0..r12, sp, lr, pc."""
    names = [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
    raw = bytearray(368)
    struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<I", raw, 4 + 4 * names.index(name), value)
    return bytes(raw)


def arm64_context(flags: int = 0x00400007, old: bool = False, **registers: int) -> bytes:
    """A 912-byte ARM64 context, or the 796-byte ARM64_OLD one with `old=True`."""
    names = [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"]
    raw = bytearray(796 if old else 912)
    if old:
        struct.pack_into("<Q", raw, 0, flags if flags != 0x00400007 else 0x80000006)
    else:
        struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<Q", raw, 8 + 8 * names.index(name), value)
    return bytes(raw)


def cv_pdb70(guid: bytes, age: int, pdb_name: str) -> bytes:
    return b"RSDS" + guid + struct.pack("<I", age) + pdb_name.encode() + b"\0"


def cv_pdb20(signature: int, age: int, pdb_name: str) -> bytes:
    return b"NB10" + struct.pack("<III", 0, signature, age) + pdb_name.encode() + b"\0"


def cv_elf(build_id: bytes) -> bytes:
    return b"LEpB" + build_id


def elf_debug_id(build_id: bytes) -> str:
    """Breakpad's debug id for an ELF build id (docs/formats/minidump.md §5.2)."""
    guid = (build_id[:16] + bytes(16))[:16]
    d1, d2, d3 = struct.unpack("<IHH", guid[:8])
    return f"{d1:08X}{d2:04X}{d3:04X}{guid[8:16].hex().upper()}0"
