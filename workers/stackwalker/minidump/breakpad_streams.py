"""Breakpad's own streams: BreakpadInfo (0x47670001) and AssertionInfo (0x47670002)
(docs/formats/minidump.md §3.11)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.strings import fixed_utf16

BREAKPAD_INFO_SIZE = 12
ASSERTION_INFO_SIZE = 776
VALID_DUMP_THREAD_ID = 1
VALID_REQUESTING_THREAD_ID = 2

_ASSERTION_TYPES = {
    1: "Invalid parameter passed to library function",
    2: "Pure virtual function called",
}


@dataclass(frozen=True)
class BreakpadInfo:
    dump_thread_id: int | None
    requesting_thread_id: int | None


def parse_breakpad_info(stream: ByteView) -> BreakpadInfo:
    if stream.size < BREAKPAD_INFO_SIZE:
        raise MinidumpFormatError(f"BreakpadInfo stream of {stream.size} bytes")
    validity, dump_tid, requesting_tid = stream.unpack("III", 0)
    return BreakpadInfo(
        dump_tid if validity & VALID_DUMP_THREAD_ID else None,
        requesting_tid if validity & VALID_REQUESTING_THREAD_ID else None,
    )


@dataclass(frozen=True)
class AssertionInfo:
    expression: str
    function: str
    file: str
    line: int
    type: int

    def describe(self) -> str:
        """Breakpad's assertion text (docs/formats/breakpad.md §8.2)."""
        text = _ASSERTION_TYPES.get(self.type, f"Unknown assertion type 0x{self.type:08x}")
        if self.expression:
            text += " " + self.expression
        if self.function:
            text += " in function " + self.function
        if self.file:
            text += ", in file " + self.file
        if self.line:
            text += f" at line {self.line}"
        return text


def parse_assertion_info(stream: ByteView) -> AssertionInfo:
    if stream.size < ASSERTION_INFO_SIZE:
        raise MinidumpFormatError(f"AssertionInfo stream of {stream.size} bytes")
    le = stream.little_endian
    return AssertionInfo(
        expression=fixed_utf16(stream.bytes_at(0, 256), le),
        function=fixed_utf16(stream.bytes_at(256, 256), le),
        file=fixed_utf16(stream.bytes_at(512, 256), le),
        line=stream.u32(768),
        type=stream.u32(772),
    )
