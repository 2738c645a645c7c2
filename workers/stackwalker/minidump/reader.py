"""Bounds-checked little/big-endian reads over a minidump's bytes (bytes, bytearray or mmap).

Every read checks `offset + size` against the view's end, so a hostile offset or count turns
into a MinidumpFormatError instead of an IndexError, a short read or a huge allocation.
"""

from __future__ import annotations

import mmap
import struct
from functools import lru_cache

Buffer = bytes | bytearray | memoryview | mmap.mmap


class MinidumpFormatError(ValueError):
    """The bytes do not hold what the format says they should (bad offset, size or count)."""


@lru_cache(maxsize=256)
def _compiled(fmt: str) -> struct.Struct:
    return struct.Struct(fmt)


class ByteView:
    """A window [start, start + size) over the file's bytes.

    Offsets given to the read methods are relative to the window's start; RVAs are offsets into
    the view of the whole file.
    """

    __slots__ = ("_buf", "_start", "size", "little_endian", "_prefix")

    def __init__(
        self,
        buf: Buffer,
        start: int = 0,
        size: int | None = None,
        *,
        little_endian: bool = True,
    ) -> None:
        self._buf = buf if isinstance(buf, memoryview) else memoryview(buf)
        total = len(self._buf)
        if size is None:
            size = total - start
        if start < 0 or size < 0 or start + size > total:
            raise MinidumpFormatError(f"window {start:#x}+{size:#x} outside {total:#x} bytes")
        self._start = start
        self.size = size
        self.little_endian = little_endian
        self._prefix = "<" if little_endian else ">"

    def check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise MinidumpFormatError(
                f"read of {size:#x} bytes at {offset:#x} outside a {self.size:#x}-byte region"
            )

    def sub(self, offset: int, size: int) -> ByteView:
        self.check(offset, size)
        return ByteView(self._buf, self._start + offset, size, little_endian=self.little_endian)

    def bytes_at(self, offset: int, size: int) -> bytes:
        self.check(offset, size)
        at = self._start + offset
        return bytes(self._buf[at : at + size])

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        """struct-unpack `fmt` (no byte-order prefix) at offset, in the file's byte order."""
        compiled = _compiled(self._prefix + fmt)
        self.check(offset, compiled.size)
        return compiled.unpack_from(self._buf, self._start + offset)

    def u16(self, offset: int) -> int:
        return self.unpack("H", offset)[0]

    def u32(self, offset: int) -> int:
        return self.unpack("I", offset)[0]

    def i32(self, offset: int) -> int:
        return self.unpack("i", offset)[0]

    def u64(self, offset: int) -> int:
        return self.unpack("Q", offset)[0]

    def cstring(self, offset: int, max_len: int | None = None) -> bytes | None:
        """Bytes from offset up to (not including) the first NUL; None if no NUL in range."""
        end = self.size if max_len is None else min(self.size, offset + max_len)
        self.check(offset, max(0, end - offset))
        raw = bytes(self._buf[self._start + offset : self._start + end])
        nul = raw.find(b"\0")
        return None if nul < 0 else raw[:nul]


def checked_count(count: int, entry_size: int, available: int, limit: int | None = None) -> int:
    """Validate a count read from the file before it drives a loop or an allocation."""
    if limit is not None and count > limit:
        raise MinidumpFormatError(f"count {count} exceeds the limit {limit}")
    if count * entry_size > available:
        raise MinidumpFormatError(
            f"count {count} x {entry_size} bytes does not fit in {available} bytes"
        )
    return count
