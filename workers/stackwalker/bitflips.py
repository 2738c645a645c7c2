"""Addresses one flipped bit away from the crash address that would not have crashed:
rust-minidump's bit-flip heuristic (minidump-processor `check_for_bitflips`), which Socorro
reads as `json_dump.crash_info.possible_bit_flips`.

Without disassembly there are no memory accesses of the crashing instruction and no source
registers: the candidates come from the crash address alone, as rust-minidump finds them for
an instruction it cannot decode. Confidences are computed in 32-bit floats, as there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from procsupervisor.workers.stackwalker.memory_regions import MemoryMap, Region

# Registers within this distance of a candidate count as "nearby" (a pointer into the same
# allocation); candidates below LOW_ADDRESS_CUTOFF are too common to count them for.
NEARBY_REGISTER_DISTANCE = 1 << 12
LOW_ADDRESS_CUTOFF = NEARBY_REGISTER_DISTANCE * 2
# amd64 addresses are canonical in their low 48 bits: flipping a higher bit of a canonical
# address can only make it non-canonical.
AMD64_CANONICAL_BITS = 48
# Fill bytes of freed or poisoned memory (jemalloc, mozjemalloc, JS engine poison values): a
# register made of one of them repeated suggests a use-after-free rather than a bit flip.
POISON_BYTES = frozenset(
    {0x2B, 0x2D, 0x2F, 0x49, 0x4B, 0x4D, 0x4F, 0x6B, 0x8B, 0x9B, 0x9F, 0xA5, 0xBB, 0xCC, 0xCD,
     0xCE, 0xDB, 0xE5}
)  # fmt: skip

# Windows access-violation kinds (ExceptionInformation[0]) -> the operation that faulted.
READ, WRITE, EXECUTE = "read", "write", "execute"
_ACCESS_KINDS = {0: READ, 1: WRITE, 8: EXECUTE}
EXCEPTION_ACCESS_VIOLATION = 0xC0000005


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


HIGH, MEDIUM, LOW = f32(0.90), f32(0.50), f32(0.25)
BASELINE = LOW
NON_CANONICAL = HIGH
NULL = MEDIUM
NEARBY_REGISTER = (MEDIUM, f32(MEDIUM + f32(0.05)), f32(MEDIUM + f32(0.1)), f32(MEDIUM + f32(0.15)))
POISON = MEDIUM
ORIGINAL_LOW = MEDIUM


def shortest_f32(value: float) -> float:
    """The shortest decimal that reads back as the same 32-bit float (how serde prints f32)."""
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if f32(candidate) == value:
            return candidate
    return value


@dataclass
class BitFlipDetails:
    was_non_canonical: bool = False
    is_null: bool = False
    was_low: bool = False
    nearby_registers: int = 0
    poison_registers: bool = False

    def confidence(self) -> float:
        values = [BASELINE]
        if self.was_non_canonical:
            values.append(NON_CANONICAL)
        if self.is_null:
            values.append(f32(NULL * ORIGINAL_LOW) if self.was_low else NULL)
        if self.nearby_registers > 0:
            values.append(NEARBY_REGISTER[min(self.nearby_registers, len(NEARBY_REGISTER)) - 1])
        product = 1.0
        for value in values:
            product = f32(product * f32(1.0 - value))
        result = f32(1.0 - product)
        if self.poison_registers:
            result = f32(result * POISON)
        return result


@dataclass
class PossibleBitFlip:
    address: int
    details: BitFlipDetails = field(default_factory=BitFlipDetails)
    source_register: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": f"0x{self.address:016x}",
            "confidence": shortest_f32(self.details.confidence()),
            "details": {
                "is_null": self.details.is_null,
                "nearby_registers": self.details.nearby_registers,
                "poison_registers": self.details.poison_registers,
                "was_low": self.details.was_low,
                "was_non_canonical": self.details.was_non_canonical,
            },
            "source_register": self.source_register,
        }


def _is_repeated_byte(value: int) -> bool:
    return value == (value & 0xFF) * 0x0101010101010101


def _details(
    candidate: int, original: int, registers: dict[str, int], was_non_canonical: bool
) -> BitFlipDetails:
    details = BitFlipDetails(was_non_canonical=was_non_canonical, is_null=candidate == 0)
    details.was_low = details.is_null and original <= LOW_ADDRESS_CUTOFF
    count_nearby = candidate > LOW_ADDRESS_CUTOFF
    for value in registers.values():
        if count_nearby and abs(candidate - value) <= NEARBY_REGISTER_DISTANCE:
            details.nearby_registers += 1
        if _is_repeated_byte(value) and (value & 0xFF) in POISON_BYTES:
            details.poison_registers = True
    return details


def faulting_operation(code: int, parameters: list[int], is_windows: bool) -> str | None:
    """What the crashing access did, when the OS says (Windows access violations); None means
    any mapped region could have served it."""
    if is_windows and code == EXCEPTION_ACCESS_VIOLATION and parameters:
        return _ACCESS_KINDS.get(parameters[0])
    return None


def allows(region: Region, operation: str | None) -> bool:
    if operation == READ:
        return region.readable
    if operation == WRITE:
        return region.writable
    if operation == EXECUTE:
        return region.executable
    return True


def possible_bit_flips(
    address: int,
    memory: MemoryMap | None,
    operation: str | None,
    registers: dict[str, int],
) -> list[PossibleBitFlip]:
    """Candidates for an amd64 crash at `address` (the caller checks the CPU: rust-minidump
    skips 32-bit CPUs, where false positives abound, and arm64, which it cannot decode).
    `registers` are the exception context's general registers."""
    mapped = memory.region_at(address) if memory is not None else None
    if mapped is not None and allows(mapped, operation):
        return []
    flips = []
    for bit in range(AMD64_CANONICAL_BITS):
        candidate = address ^ (1 << bit)
        # A null candidate is kept even though nothing maps there: a pointer that should have
        # been null (a null check gone the wrong way) is a classic flip.
        if candidate == 0:
            flips.append(PossibleBitFlip(0, _details(0, address, registers, False)))
        region = memory.region_at(candidate) if memory is not None else None
        if region is not None and allows(region, operation):
            flips.append(PossibleBitFlip(candidate, _details(candidate, address, registers, False)))
    return flips
