"""Number and token fields of `.sym` records (docs/formats/breakpad.md §1.2).

The well-formed common case goes through `int()`; anything else falls back to the exact
C-semantics helpers in cparse.py, so both paths give Breakpad's answers.
"""

from __future__ import annotations

from procsupervisor.workers.stackwalker.symbols.cparse import (
    LONG_MAX,
    U64_MAX,
    checked_long,
    checked_u64,
    tokenize,
    unchecked_ulong,
)

HEX_CHARS = b"0123456789abcdefABCDEF"
DEC_CHARS = b"0123456789"


def hex_field(token: bytes) -> int | None:
    """Validated `strtoull(.., 16)` field (FUNC/PUBLIC/line/INLINE addresses and sizes)."""
    if token and not token.translate(None, HEX_CHARS):
        value = int(token, 16)
        return value if value < U64_MAX else None
    return checked_u64(token, 16)


def long_field(token: bytes, base: int, minimum: int) -> int | None:
    """Validated `strtol` field: >= minimum and != LONG_MAX."""
    if token and not token.translate(None, DEC_CHARS if base == 10 else HEX_CHARS):
        value = int(token, base)
        return value if value < LONG_MAX and value >= minimum else None
    return checked_long(token, base, minimum)


def loose_hex(token: bytes) -> int:
    """Unvalidated `strtoul(.., 16)` (STACK WIN / STACK CFI numbers)."""
    if token and not token.translate(None, HEX_CHARS):
        value = int(token, 16)
        return value if value <= U64_MAX else U64_MAX
    return unchecked_ulong(token, 16)


def exact_line_record(line: bytes) -> tuple[int, int, int, int] | None:
    """A line record's (address, size, line, file id) with the exact C checks, or None."""
    tokens = tokenize(line, 4)
    if tokens is None:
        return None
    base = checked_u64(tokens[0], 16)
    size = checked_u64(tokens[1], 16)
    number = checked_long(tokens[2], 10, 0)
    file_id = checked_long(tokens[3], 10, 0)
    if base is None or size is None or number is None or file_id is None:
        return None
    return base, size, number, file_id


def with_optional_m(rest: bytes, max_tokens: int) -> tuple[bool, list[bytes]] | None:
    """Breakpad's TokenizeWithOptionalField(rest, "m", max_tokens) for FUNC and PUBLIC."""
    parts = rest.split(b" ", max_tokens - 2)
    if len(parts) != max_tokens - 1 or b"" in parts:
        found = tokenize(rest, max_tokens - 1)
        if found is None:
            return None
        parts = found
    if parts[0] != b"m":
        return False, parts
    tail = tokenize(parts[-1], 2)
    if tail is None:
        return None
    return True, parts[1:-1] + tail
