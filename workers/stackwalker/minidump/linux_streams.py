"""Linux extension streams: /proc and /etc text, auxv and DSO debug (docs/formats/minidump.md
§3.14)."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.minidump.reader import (
    ByteView,
    MinidumpFormatError,
    checked_count,
)
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string

MAX_DSOS = 4096


def text(stream: ByteView) -> str:
    return stream.bytes_at(0, stream.size).decode("utf-8", errors="replace")


def key_value_lines(stream: ByteView, separator: str) -> dict[str, str]:
    """`key: value` (/proc/self/status) or `KEY=VALUE` (lsb-release) lines; first key wins."""
    result: dict[str, str] = {}
    for line in text(stream).splitlines():
        key, sep, value = line.partition(separator)
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if separator == "=" and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result.setdefault(key, value)
    return result


def nul_separated(stream: ByteView) -> list[str]:
    parts = text(stream).split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_lsb_release(stream: ByteView) -> dict[str, str]:
    """id, release, codename, description (rust-minidump's names), from lsb or os-release."""
    values = key_value_lines(stream, "=")
    return {
        "id": values.get("DISTRIB_ID", values.get("ID", "")),
        "release": values.get("DISTRIB_RELEASE", values.get("VERSION_ID", "")),
        "codename": values.get("DISTRIB_CODENAME", values.get("VERSION_CODENAME", "")),
        "description": values.get("DISTRIB_DESCRIPTION", values.get("PRETTY_NAME", "")),
    }


def parse_auxv(stream: ByteView, pointer_width: int) -> list[tuple[int, int]]:
    fmt = "II" if pointer_width == 4 else "QQ"
    pair = 2 * pointer_width
    return [stream.unpack(fmt, i * pair) for i in range(stream.size // pair)]  # type: ignore[misc]


@dataclass
class DsoDebug:
    version: int
    brk: int
    ldbase: int
    dynamic: int
    link_maps: list[tuple[int, str, int]] = field(default_factory=list)  # (addr, name, ld)


def parse_dso_debug(stream: ByteView, file: ByteView, pointer_width: int) -> DsoDebug:
    if pointer_width == 8:
        version, map_rva, count = stream.unpack("III", 0)
        brk, ldbase, dynamic = stream.unpack("QQQ", 16)
        entry_size = 24
    else:
        version, map_rva, count, brk, ldbase, dynamic = stream.unpack("IIIIII", 0)
        entry_size = 12
    checked_count(count, entry_size, file.size, MAX_DSOS)
    debug = DsoDebug(version, brk, ldbase, dynamic)
    for i in range(count):
        at = map_rva + i * entry_size
        if pointer_width == 8:
            addr, name_rva = file.unpack("QI", at)
            ld = file.u64(at + 16)
        else:
            addr, name_rva, ld = file.unpack("III", at)
        try:
            name = read_minidump_string(file, name_rva)
        except MinidumpFormatError:
            name = ""
        debug.link_maps.append((addr, name, ld))
    return debug
