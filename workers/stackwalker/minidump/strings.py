"""The string encodings minidumps use (docs/formats/minidump.md §1.4 and 1.5)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError

# Breakpad's default max_string_length, in UTF-16 code units.
MAX_STRING_UNITS = 1024
MAX_UTF8_STRING_BYTES = 1 << 20


def read_minidump_string(file: ByteView, rva: int) -> str:
    """MINIDUMP_STRING: u32 byte length, then UTF-16 code units (Breakpad's rules)."""
    length = file.u32(rva)
    if length % 2:
        raise MinidumpFormatError(f"odd MINIDUMP_STRING length {length} at {rva:#x}")
    if length // 2 > MAX_STRING_UNITS:
        raise MinidumpFormatError(f"MINIDUMP_STRING of {length // 2} units at {rva:#x}")
    raw = file.bytes_at(rva + 4, length)
    codec = "utf-16-le" if file.little_endian else "utf-16-be"
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise MinidumpFormatError(f"bad UTF-16 in MINIDUMP_STRING at {rva:#x}") from exc


def read_utf8_string(file: ByteView, rva: int) -> str:
    """MinidumpUTF8String: u32 byte length, bytes, NUL (the NUL is not required here)."""
    length = file.u32(rva)
    if length > MAX_UTF8_STRING_BYTES:
        raise MinidumpFormatError(f"UTF-8 string of {length} bytes at {rva:#x}")
    return file.bytes_at(rva + 4, length).decode("utf-8", errors="replace")


def read_byte_array(file: ByteView, rva: int) -> bytes:
    length = file.u32(rva)
    if length > MAX_UTF8_STRING_BYTES:
        raise MinidumpFormatError(f"byte array of {length} bytes at {rva:#x}")
    return file.bytes_at(rva + 4, length)


def fixed_utf16(raw: bytes, little_endian: bool = True) -> str:
    """A NUL-terminated UTF-16 string inside a fixed-size buffer."""
    codec = "utf-16-le" if little_endian else "utf-16-be"
    text = raw[: len(raw) - len(raw) % 2].decode(codec, errors="replace")
    nul = text.find("\0")
    return text if nul < 0 else text[:nul]
