"""The minidump writer's byte layout: header constants and the data area after the directory.

Everything a stream points to (strings, CodeView records, contexts, stack bytes) is placed in
the data area first and referenced by its RVA (docs/formats/minidump.md).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

SIGNATURE = 0x504D444D
VERSION = 0xA793

ARCH_X86 = 0
ARCH_ARM = 5
ARCH_AMD64 = 9
ARCH_ARM64 = 12
ARCH_ARM64_OLD = 0x8003
PLATFORM_WINDOWS = 2
PLATFORM_MAC = 0x8101
PLATFORM_LINUX = 0x8201
PLATFORM_ANDROID = 0x8203


class Writer:
    """Appends data after the header and directory and hands back each piece's RVA."""

    def __init__(self, start: int, prefix: str) -> None:
        self.data = bytearray()
        self.start = start
        self.prefix = prefix

    def place(self, data: bytes, align: int = 4) -> int:
        while (self.start + len(self.data)) % align:
            self.data.append(0)
        rva = self.start + len(self.data)
        self.data += data
        return rva

    def pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.prefix + fmt, *values)

    def string(self, text: str) -> int:
        """A MINIDUMP_STRING (UTF-16, byte length prefix, NUL after)."""
        codec = "utf-16-le" if self.prefix == "<" else "utf-16-be"
        raw = text.encode(codec)
        return self.place(self.pack("I", len(raw)) + raw + b"\0\0")

    def utf8_string(self, text: str) -> int:
        raw = text.encode("utf-8")
        return self.place(self.pack("I", len(raw)) + raw + b"\0")


Piece = bytes | Callable[[Writer], bytes]


def resolve(piece: Piece, writer: Writer) -> bytes:
    """A stream body: the bytes themselves, or what the callable writes (it may place data)."""
    return piece(writer) if callable(piece) else piece
