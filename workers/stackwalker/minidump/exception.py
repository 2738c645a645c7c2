"""Exception stream (6) (docs/formats/minidump.md §3.4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError

EXCEPTION_STREAM_SIZE = 168
MAX_PARAMETERS = 15


@dataclass(frozen=True)
class ExceptionRecord:
    thread_id: int
    code: int
    flags: int
    record_address: int
    address: int
    number_parameters: int
    parameters: list[int] = field(default_factory=list)  # clamped to 15
    context_size: int = 0
    context_rva: int = 0


def parse_exception(stream: ByteView) -> ExceptionRecord:
    if stream.size < EXCEPTION_STREAM_SIZE:
        raise MinidumpFormatError(f"exception stream of {stream.size} bytes")
    thread_id = stream.u32(0)
    code, flags, record, address, nparams = stream.unpack("IIQQI", 8)
    used = min(nparams, MAX_PARAMETERS)
    params = list(stream.unpack(f"{used}Q", 40)) if used else []
    context_size, context_rva = stream.unpack("II", 160)
    return ExceptionRecord(
        thread_id, code, flags, record, address, used, params, context_size, context_rva
    )
