"""On-disk layout of a symbol index (docs/architecture.md §9): header, section table, typed arrays.

Layout (little-endian):
  header   32 bytes: magic, format version, section count, crc32 of everything after the
           header, reserved, length of everything after the header
  table    section count x (offset u64, byte length u64, element size u64), offsets from the
           start of the buffer
  sections 8-aligned typed arrays (tables.SECTIONS), read in place through memoryview.cast;
           "Q" sections are stored with 4-byte elements when every value fits
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from procsupervisor.workers.stackwalker.symbols.tables import (
    PARALLEL_GROUPS,
    SECTIONS,
)

MAGIC = b"PSSYMIX\x00"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sIIIIQ")
_TABLE_ENTRY = struct.Struct("<QQQ")  # offset, byte length, element size
_TYPECODE_BY_SIZE = {1: "B", 4: "I", 8: "Q"}
# A "Q" section whose values all fit in 32 bits is stored with 4-byte elements: module-relative
# addresses, sizes and line numbers nearly always fit, which makes the index about half as big.
_ALLOWED_SIZES = {"B": (1,), "I": (4,), "Q": (4, 8)}
_U32_MAX = 0xFFFFFFFF
Buffer = Any  # bytes, bytearray, array, memoryview: what `write` and `zlib.crc32` take


class SymbolIndexError(Exception):
    """The buffer is not a valid symbol index (bad magic/version, truncated, corrupt)."""


def _align8(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True)
class LazySection:
    """A section produced while it is written, chunk by chunk, instead of held whole:
    `chunks()` yields arrays whose item size is `itemsize`."""

    count: int
    itemsize: int
    chunks: Callable[[], Iterable[array]]


SectionData = array | bytes | bytearray | LazySection
_NARROWING_CHUNK = 1 << 16


def _plan(name: str, code: str, data: SectionData) -> tuple[int, int, Callable[[], Iterable]]:
    """(element count, element size on disk, chunks to write) of one section."""
    if isinstance(data, LazySection):
        return data.count, data.itemsize, data.chunks
    if isinstance(data, bytes | bytearray):
        if code != "B":
            raise ValueError(f"section {name} is bytes, expected typecode {code}")
        return len(data), 1, lambda: (data,)
    if data.typecode == code or (code == "Q" and data.typecode == "I"):
        if data.typecode == "Q" and (not data or max(data) <= _U32_MAX):
            return len(data), 4, lambda: _narrowed(data)
        return len(data), data.itemsize, lambda: (data,)
    raise ValueError(f"section {name} has typecode {data.typecode}, expected {code}")


def _narrowed(values: array) -> Iterable[array]:
    for start in range(0, len(values), _NARROWING_CHUNK):
        yield array("I", values[start : start + _NARROWING_CHUNK])


def write_sections(out: BinaryIO, sections: Mapping[str, SectionData]) -> int:
    """Write the sections in the on-disk format (tables.SECTIONS order) to the seekable
    `out`, from its current position 0; returns the number of bytes written. Only one chunk of
    a section is copied at a time."""
    count = len(SECTIONS)
    table = bytearray(count * _TABLE_ENTRY.size)
    plans: list[tuple[int, Callable[[], Iterable]]] = []
    pos = _align8(_HEADER.size + len(table))
    for i, (name, code) in enumerate(SECTIONS):
        elements, itemsize, chunks = _plan(name, code, sections[name])
        nbytes = elements * itemsize
        _TABLE_ENTRY.pack_into(table, i * _TABLE_ENTRY.size, pos, nbytes, itemsize)
        plans.append((pos, chunks))
        pos = _align8(pos + nbytes)
    total = pos
    crc = 0
    written = _HEADER.size
    out.write(bytes(_HEADER.size))  # the header, once the checksum is known

    def emit(data: Buffer) -> None:
        nonlocal crc, written
        out.write(data)
        crc = zlib.crc32(data, crc)
        written += memoryview(data).nbytes

    emit(table)
    for offset, chunks in plans:
        if offset > written:
            emit(bytes(offset - written))
        for chunk in chunks():
            if len(chunk):
                emit(chunk)
    if total > written:
        emit(bytes(total - written))
    out.seek(0)
    out.write(_HEADER.pack(MAGIC, FORMAT_VERSION, count, crc, 0, total - _HEADER.size))
    out.seek(total)
    return total


def read_layout(view: memoryview, verify: bool) -> dict[str, memoryview]:
    total = len(view)
    if total < _HEADER.size:
        raise SymbolIndexError("truncated symbol index header")
    magic, version, count, crc, _reserved, body_length = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise SymbolIndexError("not a symbol index (bad magic)")
    if version != FORMAT_VERSION:
        raise SymbolIndexError(f"unsupported symbol index version {version}")
    if count != len(SECTIONS):
        raise SymbolIndexError(f"unexpected section count {count}")
    if body_length != total - _HEADER.size:
        raise SymbolIndexError(
            f"symbol index length mismatch: header says {body_length + _HEADER.size}, "
            f"buffer has {total}"
        )
    table_end = _HEADER.size + count * _TABLE_ENTRY.size
    if table_end > total:
        raise SymbolIndexError("truncated symbol index section table")
    if verify and zlib.crc32(view[_HEADER.size :]) != crc:
        raise SymbolIndexError("symbol index crc32 mismatch")
    arrays: dict[str, memoryview] = {}
    for i, (name, code) in enumerate(SECTIONS):
        offset, nbytes, itemsize = _TABLE_ENTRY.unpack_from(
            view, _HEADER.size + i * _TABLE_ENTRY.size
        )
        if itemsize not in _ALLOWED_SIZES[code]:
            raise SymbolIndexError(f"bad element size {itemsize} for section {name}")
        if offset < table_end or offset % 8 or offset + nbytes > total or nbytes % itemsize:
            raise SymbolIndexError(f"bad bounds for section {name}")
        arrays[name] = view[offset : offset + nbytes].cast(_TYPECODE_BY_SIZE[itemsize])
    _check_shapes(arrays)
    return arrays


def _check_shapes(arrays: dict[str, memoryview]) -> None:
    for group in PARALLEL_GROUPS:
        first_name, first_mult = group[0]
        count = len(arrays[first_name]) // first_mult
        for name, mult in group:
            if len(arrays[name]) != count * mult:
                raise SymbolIndexError(f"section {name} does not match {first_name}")
    prefixes = (
        ("func_line_start", "func_base", "line_base"),
        ("func_inline_start", "func_base", "inline_base"),
        ("inlrec_range_start", "inlrec_name", "inlrec_range_base"),
        ("str_offsets", None, "str_data"),
    )
    for prefix, owner, target in prefixes:
        starts = arrays[prefix]
        if owner is not None and len(starts) != len(arrays[owner]) + 1:
            raise SymbolIndexError(f"section {prefix} has the wrong length")
        if not len(starts) or starts[0] != 0 or starts[-1] != len(arrays[target]):
            raise SymbolIndexError(f"section {prefix} does not cover {target}")
