"""C library parsing semantics that Breakpad's `.sym` reader relies on (docs/formats/breakpad.md
§1.2).

The fast paths in the parser use `int()`; these functions are the exact fallback for anything
`int()` might read differently from `strtoull`/`strtol` + Breakpad's `IsValidAfterNumber`.
"""

from __future__ import annotations

U64_MAX = (1 << 64) - 1
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)

_C_SPACE = b" \t\n\v\f\r"
_VALID_AFTER_NUMBER = (None, 0x20, 0x0D, 0x0A)  # end of string, space, CR, LF


def _digit_value(byte: int) -> int:
    if 0x30 <= byte <= 0x39:
        return byte - 0x30
    if 0x61 <= byte <= 0x7A:
        return byte - 0x61 + 10
    if 0x41 <= byte <= 0x5A:
        return byte - 0x41 + 10
    return 99


def _scan(token: bytes, base: int) -> tuple[int, bool, int]:
    """Shared part of strtoul/strtol: (magnitude, negative, end index); end 0 = no number."""
    n = len(token)
    i = 0
    while i < n and token[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and token[i] in b"+-":
        negative = token[i] == 0x2D
        i += 1
    if (
        base == 16
        and token[i : i + 2] in (b"0x", b"0X")
        and i + 2 < n
        and _digit_value(token[i + 2]) < 16
    ):
        i += 2
    start = i
    value = 0
    while i < n:
        digit = _digit_value(token[i])
        if digit >= base:
            break
        value = value * base + digit
        i += 1
    if i == start:
        return 0, False, 0
    return value, negative, i


def strtoull(token: bytes, base: int) -> tuple[int, int]:
    """(value, end index) like C `strtoull`: overflow saturates, a leading '-' wraps."""
    value, negative, end = _scan(token, base)
    if value > U64_MAX:
        return U64_MAX, end
    if negative:
        value = (-value) & U64_MAX
    return value, end


def strtol(token: bytes, base: int) -> tuple[int, int]:
    """(value, end index) like C `strtol` on LP64: saturates at LONG_MIN/LONG_MAX."""
    value, negative, end = _scan(token, base)
    if negative:
        value = -value
    if value > LONG_MAX:
        value = LONG_MAX
    elif value < LONG_MIN:
        value = LONG_MIN
    return value, end


def valid_after(token: bytes, end: int) -> bool:
    following = token[end] if end < len(token) else None
    return following in _VALID_AFTER_NUMBER


def checked_u64(token: bytes, base: int = 16) -> int | None:
    """A validated unsigned field: number then end/space/CR/LF, and not ULLONG_MAX."""
    value, end = strtoull(token, base)
    if not valid_after(token, end) or value == U64_MAX:
        return None
    return value


def checked_long(token: bytes, base: int, minimum: int) -> int | None:
    """A validated signed field: number then end/space/CR/LF, >= minimum, not LONG_MAX."""
    value, end = strtol(token, base)
    if not valid_after(token, end) or value < minimum or value == LONG_MAX:
        return None
    return value


def unchecked_ulong(token: bytes, base: int = 16) -> int:
    """`strtoul` with the result used whatever follows (STACK WIN / STACK CFI fields)."""
    return strtoull(token, base)[0]


def tokenize(line: bytes, max_tokens: int) -> list[bytes] | None:
    """Breakpad's Tokenize on separators " \\r\\n" over a line that has no CR/LF left.

    The first max_tokens-1 fields are space-separated words (runs of spaces collapse); the last
    is the rest of the line starting right after the single space that ended the previous word.
    Returns None unless exactly max_tokens fields were found."""
    return tokenize_partial(line, max_tokens, require_all=True)


def tokenize_partial(line: bytes, max_tokens: int, require_all: bool = False) -> list[bytes] | None:
    tokens: list[bytes] = []
    n = len(line)
    pos = 0
    for _ in range(max_tokens - 1):
        while pos < n and line[pos] == 0x20:
            pos += 1
        if pos >= n:
            return None if require_all else tokens
        end = line.find(b" ", pos)
        if end < 0:
            end = n
        tokens.append(line[pos:end])
        pos = end + 1
    if pos >= n:
        return None if require_all else tokens
    tokens.append(line[pos:])
    return tokens
